#include "script/small_blocks.hpp"

#include <cstdlib>

// With AddressSanitizer, a block on a free list is poisoned, so that a use after Lua freed it
// is still reported; without it these are no-ops.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SMALL_BLOCKS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SMALL_BLOCKS_ASAN)
#include <sanitizer/asan_interface.h>
#define SMALL_BLOCKS_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SMALL_BLOCKS_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SMALL_BLOCKS_POISON(p, n) ((void)(p), (void)(n))
#define SMALL_BLOCKS_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace smtpfault::script {

small_blocks::~small_blocks() {
  for (void* slab : slabs_) {
    SMALL_BLOCKS_UNPOISON(slab, slab_bytes);  // the C library's own checks take over
    std::free(slab);
  }
}

void* small_blocks::take(std::size_t size) {
  const auto c = class_of(size);
  const std::size_t bytes = (c + 1) * granule;
  if (free_block* b = free_[c]) {
    SMALL_BLOCKS_UNPOISON(b, bytes);
    free_[c] = b->next;
    return b;
  }
  if (static_cast<std::size_t>(unused_end_ - unused_) < bytes) {
    // What is left of the old slab stays unused: at most 240 bytes of 64 KiB.
    slabs_.reserve(slabs_.size() + 1);
    void* slab = std::malloc(slab_bytes);
    if (!slab) return nullptr;
    slabs_.push_back(slab);
    unused_ = static_cast<std::byte*>(slab);
    unused_end_ = unused_ + slab_bytes;
    SMALL_BLOCKS_POISON(unused_, slab_bytes);
  }
  void* b = unused_;
  unused_ += bytes;
  SMALL_BLOCKS_UNPOISON(b, bytes);
  return b;
}

void small_blocks::give_back(void* block, std::size_t size) {
  const auto c = class_of(size);
  auto* b = static_cast<free_block*>(block);
  b->next = free_[c];
  free_[c] = b;
  // The link stays readable for take(); the rest of the block is off limits until then.
  SMALL_BLOCKS_POISON(reinterpret_cast<std::byte*>(b) + sizeof(free_block),
                      (c + 1) * granule - sizeof(free_block));
}

}  // namespace smtpfault::script
