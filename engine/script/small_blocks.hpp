// A cache of a Lua state's freed small blocks (tables, short strings, closures, upvalues).
#pragma once

#include <array>
#include <cstddef>

// SMTPFAULT_ASAN: this build runs under AddressSanitizer (GCC says so with a macro, clang with
// __has_feature). The cache poisons the blocks it holds; the sandbox does without it there.
#if defined(__SANITIZE_ADDRESS__)
#define SMTPFAULT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SMTPFAULT_ASAN 1
#endif
#endif

namespace smtpfault::script {

// A hook call makes a few dozen small objects and the collector frees them in bursts, more at
// once than the C library's per-thread cache keeps, so most of them went through malloc's
// slow path and free's consolidation. A freed block of up to `largest` bytes waits here, on a
// list of its 16-byte size class, for the next request of that class; each list keeps at most
// `kept_bytes_per_class` and hands the rest back to the C library, so the cache holds at most
// 1 MiB beyond what the sandbox's memory limit counts (the live blocks).
// Not thread-safe: one cache belongs to one Lua state, used under that state's lock.
class small_blocks {
 public:
  static constexpr std::size_t largest = 256;
  static constexpr std::size_t kept_bytes_per_class = 64 * 1024;

  small_blocks() = default;
  ~small_blocks();
  small_blocks(const small_blocks&) = delete;
  small_blocks& operator=(const small_blocks&) = delete;

  // Whether blocks of these two sizes share a size class, so one can stand for the other.
  static bool same_class(std::size_t a, std::size_t b) { return class_of(a) == class_of(b); }

  // A block of 1 to `largest` bytes (of its class's size), or nullptr when there is no memory.
  void* take(std::size_t size);
  // Returns a block taken with the same size (or one of the same class).
  void give_back(void* block, std::size_t size);
  // What the lists hold, in bytes.
  std::size_t cached_bytes() const;

 private:
  static constexpr std::size_t granule = 16;
  static constexpr std::size_t classes = largest / granule;
  static std::size_t class_of(std::size_t size) { return (size - 1) / granule; }
  static std::size_t bytes_of(std::size_t c) { return (c + 1) * granule; }

  struct free_block {
    free_block* next;
  };
  std::array<free_block*, classes> free_{};
  std::array<std::size_t, classes> kept_{};  // blocks on each list
};

}  // namespace smtpfault::script
