// pairs() in an order fixed by the keys themselves. Lua walks a table's hash part in an order
// that depends on the state's string hash seed, which Lua draws afresh for every state (from the
// time and addresses), so a scenario that logs or decides inside a pairs() loop would differ
// from run to run under the same seed: numbers first, ascending, then strings in byte order,
// then false and true. Keys of other types (tables, functions) come last, in Lua's own order.
// next() keeps Lua's order.
#pragma once

struct lua_State;

namespace smtpfault::script {

// Replaces the global pairs. A __pairs metamethod is still honoured.
void install_ordered_pairs(lua_State* L);

}  // namespace smtpfault::script
