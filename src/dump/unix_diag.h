// What the kernel's sock_diag netlink interface tells about one unix socket: its type, state,
// peer and bound name. The only way to learn which socket is a socket's peer.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace cryo::dump {

struct UnixSocketInfo {
  int type = 0;           // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  int state = 0;          // TCP_ESTABLISHED (1) when connected, TCP_LISTEN (10), TCP_CLOSE (7)
  uint64_t peer_ino = 0;  // 0 when not connected
  std::string name;       // bound path or abstract name ("\0..."), empty when unbound
  uint32_t rqueue = 0;    // listening: connections waiting for accept; else bytes queued
  uint32_t wqueue = 0;    // listening: the backlog; else bytes queued for sending
};

// Asks about the unix socket with inode `ino` in cryo's network namespace. ENOENT (as a sys
// error) when there is no such unix socket: another family, or another namespace.
Result<UnixSocketInfo> QueryUnixSocket(uint64_t ino);

}  // namespace cryo::dump
