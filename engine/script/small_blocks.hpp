// Free lists for a Lua state's small blocks (tables, short strings, closures, upvalues).
#pragma once

#include <array>
#include <cstddef>
#include <vector>

namespace smtpfault::script {

// A hook call makes a few dozen small objects and the collector frees them in bursts, more at
// once than the C library's per-thread cache keeps, so most of them went through malloc's
// slow path and free's consolidation. Here a block of up to `largest` bytes comes from a free
// list of its 16-byte size class, carved from slabs kept until the pool is destroyed: its
// footprint is the state's peak of small blocks, which the sandbox's memory limit bounds.
// Not thread-safe: one pool belongs to one Lua state, used under that state's lock.
class small_blocks {
 public:
  static constexpr std::size_t largest = 256;

  small_blocks() = default;
  ~small_blocks();
  small_blocks(const small_blocks&) = delete;
  small_blocks& operator=(const small_blocks&) = delete;

  // Whether blocks of these two sizes share a size class, so one can stand for the other.
  static bool same_class(std::size_t a, std::size_t b) { return class_of(a) == class_of(b); }

  // A block of 1 to `largest` bytes, or nullptr when no memory is left for a new slab.
  void* take(std::size_t size);
  // Returns a block taken with the same size (or one of the same class).
  void give_back(void* block, std::size_t size);

 private:
  static constexpr std::size_t granule = 16;
  static constexpr std::size_t slab_bytes = 64 * 1024;
  static std::size_t class_of(std::size_t size) { return (size - 1) / granule; }

  struct free_block {
    free_block* next;
  };
  std::array<free_block*, largest / granule> free_{};
  std::vector<void*> slabs_;
  std::byte* unused_ = nullptr;  // the newest slab's part never handed out
  std::byte* unused_end_ = nullptr;
};

}  // namespace smtpfault::script
