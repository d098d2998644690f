// The sandbox's allocator: the memory limit, and the cache of small blocks.
#include "script/lua_sandbox.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <lua.hpp>

namespace smtpfault::script {

namespace {

// An allocation this large is a sign of work on a long string (a copy, a case change, a
// concatenation), and a moment to look at the clock.
constexpr std::size_t large_block = 64 * 1024;

// Blocks up to this size go through the cache. Not under AddressSanitizer: there every block
// comes from the C library at its exact size, since the cache would hide a write past the end
// into its size class's spare bytes, and hand a block out again before ASan's quarantine could
// report a use after free. (small_blocks itself is unit-tested in every build.)
#if defined(SMTPFAULT_ASAN)
constexpr std::size_t cached_up_to = 0;
#else
constexpr std::size_t cached_up_to = small_blocks::largest;
#endif

}  // namespace

void* lua_sandbox::allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  auto* self = static_cast<lua_sandbox*>(ud);
  // With ptr == NULL, osize encodes the object type, not a size.
  const std::size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    self->release(ptr, old);
    self->used_ -= old;
    return nullptr;
  }
  // Only refused inside a guarded run: outside one, a failed allocation would be an unprotected
  // error and abort the process, and the host's own small pushes are accounted for anyway.
  // A refusal does not stop the run at once: Lua answers a refusal of its own allocations with
  // a full collection and the same request again, and garbage not yet collected (copies of a
  // long string made in a loop) must not count as the state's size. When that request then
  // fits, nothing happened. Any other request first means there was no retry (the library's
  // string buffers make none), and the error may have been caught: the run stops. So does a
  // retry refused again: the state is over its limit even after a full collection.
  const refused_request request{ptr, osize, nsize};
  if (self->budget_ != 0 && self->memory_refused() && request != self->refused_ && !self->killed_) {
    self->stop_for_memory();
  }
  const std::size_t limit = self->limits_.memory_bytes + static_cast<std::size_t>(self->lent_);
  if (self->budget_ != 0 && nsize > old && self->used_ - old + nsize > limit) {
    if (self->memory_refused() && !self->killed_) self->stop_for_memory();  // the retry
    if (!self->killed_) {
      self->refused_ = request;
      // The next instruction stops the run unless the retry fits.
      if (self->armed_) set_hook(self->armed_, 1);
    }
    return nullptr;
  }
  if (request == self->refused_) self->refused_ = {};
  if (self->budget_ != 0 && nsize >= large_block && !self->killed_ && self->past_deadline()) {
    // The next instruction stops the run, where its position can be read.
    self->overdue_ = true;
    if (self->armed_) set_hook(self->armed_, 1);
  }
  void* p = self->resize(ptr, old, nsize);
  if (p) self->used_ = self->used_ - old + nsize;
  return p;
}

// Small blocks come from the cache, larger ones from the C library; a block that changes sides
// is copied.
void* lua_sandbox::resize(void* ptr, std::size_t old, std::size_t nsize) {
  constexpr auto largest = cached_up_to;
  if (old > largest && nsize > largest) return std::realloc(ptr, nsize);
  if (old != 0 && old <= largest && nsize <= largest && small_blocks::same_class(old, nsize)) {
    return ptr;
  }
  void* p = nsize <= largest ? blocks_.take(nsize) : std::malloc(nsize);
  if (p && ptr) {
    std::memcpy(p, ptr, std::min(old, nsize));
    release(ptr, old);
  }
  return p;
}

void lua_sandbox::release(void* ptr, std::size_t size) {
  if (!ptr) return;
  if (size <= cached_up_to) {
    blocks_.give_back(ptr, size);
  } else {
    std::free(ptr);
  }
}

// Garbage that reached the old generation is freed only by a major collection, which Lua starts
// once memory has grown well past the last one. Near the limit it cannot grow that far, and the
// library's string buffers (string.rep, table.concat, gsub) are refused without the full
// collection Lua makes before failing its own requests: the garbage of a hook that ran out of
// memory would fail every later one. So the state is collected in full after a run that met
// the limit, and between runs once it is past three quarters of its limit and has grown by an
// eighth of the limit since the last such collection (a state that large but alive is not
// collected again and again for nothing).
void lua_sandbox::collect_if_crowded() {
  const std::size_t limit = limits_.memory_bytes;
  const bool crowded = used_ >= limit / 4 * 3 && used_ >= collected_to_ + limit / 8;
  if (!std::exchange(ran_out_of_memory_, false) && !crowded) return;
  lua_gc(L_.get(), LUA_GCCOLLECT);
  collected_to_ = used_;
}

void lua_sandbox::stop_for_memory() {
  killed_ = true;
  kill_reason_ = memory_limit_reason_.c_str();
  // A pcall may catch the memory error; the next instruction must fail again.
  if (armed_) set_hook(armed_, 1);
}

}  // namespace smtpfault::script
