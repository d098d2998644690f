#include "script/small_blocks.hpp"

#include <cstdlib>

// With AddressSanitizer, a block on a list is poisoned, so that a use after Lua freed it is
// still reported; without it these are no-ops.
#if defined(SMTPFAULT_ASAN)
#include <sanitizer/asan_interface.h>
#define SMALL_BLOCKS_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SMALL_BLOCKS_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SMALL_BLOCKS_POISON(p, n) ((void)(p), (void)(n))
#define SMALL_BLOCKS_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace smtpfault::script {

small_blocks::~small_blocks() {
  for (std::size_t c = 0; c < classes; ++c) {
    while (free_block* b = free_[c]) {
      SMALL_BLOCKS_UNPOISON(b, bytes_of(c));
      free_[c] = b->next;
      std::free(b);
    }
  }
}

void* small_blocks::take(std::size_t size) {
  const auto c = class_of(size);
  free_block* b = free_[c];
  if (!b) return std::malloc(bytes_of(c));
  SMALL_BLOCKS_UNPOISON(b, bytes_of(c));
  free_[c] = b->next;
  --kept_[c];
  return b;
}

void small_blocks::give_back(void* block, std::size_t size) {
  const auto c = class_of(size);
  if ((kept_[c] + 1) * bytes_of(c) > kept_bytes_per_class) {
    std::free(block);
    return;
  }
  auto* b = static_cast<free_block*>(block);
  b->next = free_[c];
  free_[c] = b;
  ++kept_[c];
  SMALL_BLOCKS_POISON(b, bytes_of(c));
}

std::size_t small_blocks::cached_bytes() const {
  std::size_t total = 0;
  for (std::size_t c = 0; c < classes; ++c)
    total += kept_[c] * bytes_of(c);
  return total;
}

}  // namespace smtpfault::script

// Compiled together with other files (a unity build): the macros end with this file.
#undef SMALL_BLOCKS_POISON
#undef SMALL_BLOCKS_UNPOISON
