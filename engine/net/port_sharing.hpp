// Who else listens on a port that this server's SO_REUSEPORT listeners share. The kernel lets
// any process of the same user join such a port, and two servers started at the same instant
// can both pass their free-port probes; a check after listen() settles it. Both servers see
// the same socket inodes, so "the group holding the lowest inode stays" makes exactly one of
// them give up.
#pragma once

#include <string_view>
#include <vector>

namespace smtpfault::net {

// From the text of /proc/net/tcp or /proc/net/tcp6: whether a listening socket other than
// `ours` (socket inodes) has the very local address and port of one of ours, and an inode
// lower than all of ours.
bool other_listener_stays(std::string_view proc_net_tcp, const std::vector<unsigned long>& ours);

// The same for the open sockets `fds`, read from this network namespace's /proc/net/tcp and
// tcp6; false when those cannot be read (nothing is known then).
bool port_taken_by_other_listener(const std::vector<int>& fds);

}  // namespace smtpfault::net
