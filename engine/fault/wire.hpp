// The octets of a reply as a fault wants them on the wire: formatted, raw or malformed.
#pragma once

#include <string>

#include "fault/action.hpp"

namespace smtpfault::fault {

// Appends the reply's octets to out: a->raw if set, a malformed rendering if asked for,
// otherwise the normal wire form.
void append_reply_bytes(std::string& out, const proto::reply& r, const action* a);

// How the octets are cut into writes: offsets where a new write starts (ascending, inside
// (0, size)). Trickle makes a cut every trickle_bytes octets; split uses split_at.
std::vector<std::size_t> write_cuts(const action& a, std::size_t size);

}  // namespace smtpfault::fault
