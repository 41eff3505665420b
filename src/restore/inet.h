// Restore of TCP and UDP sockets, the parts that run in cryo's parent process: the check that an
// image with established connections is restored on purpose, and the last step that hands the
// connections back to the network (docs/network.md). The sockets themselves are made in the
// child (OpenInetSocket, restore/fd_kinds.h).
#pragma once

#include <sys/types.h>

#include "base/error.h"
#include "model/process.h"

namespace cryo::restore {

// kInvalidArg naming the first established connection when `tcp_established` is false.
Status CheckInetRestorable(const model::Process& p, bool tcp_established);

// Once the restored process `pid` is stopped for good with every fd installed (its connections in
// repair mode): takes each connection out of repair mode, then removes the network lock tables
// the image names. Nothing to do without established connections.
Status ReleaseTcpConnections(pid_t pid, const model::Process& p);

}  // namespace cryo::restore
