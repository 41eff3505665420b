// Capture of TCP and UDP sockets (IPv4, IPv6): listening TCP, unconnected or bound TCP, UDP bound
// and/or connected, and, with --tcp-established, established TCP connections through TCP repair
// mode under a network lock (sys/netlock.h). The session owns what a dump changes in the network
// until the dump ends: the lock and the sockets put in repair mode.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "model/process.h"
#include "sys/netlock.h"

namespace cryo::dump {

class InetSession {
 public:
  // `tcp_established`: established connections may be dumped (else they are refused).
  InetSession(pid_t pid, bool tcp_established) : pid_(pid), tcp_established_(tcp_established) {}
  InetSession(const InetSession&) = delete;
  InetSession& operator=(const InetSession&) = delete;
  // A dump that did not finish: every socket leaves repair mode, then the lock goes.
  ~InetSession();

  // Fills `out` (type kInet) for the socket at `fd` of the process, which is frozen. kUnsupported
  // naming the fd (and addresses) for another family, a state other than listen / established /
  // closed, connections waiting for accept, or an established connection without
  // --tcp-established. An established connection is locked, then put in repair mode and read.
  Status Capture(int fd, model::Fd& out);

  // The process was killed: the lock stays for restore to remove; the sockets, still in repair
  // mode, close without a packet.
  void Killed();
  // The process runs on (--leave-running): the sockets leave repair mode, the lock goes.
  Status Resumed();

  bool has_connections() const { return !repaired_.empty(); }

 private:
  Status CaptureEstablished(int sock, int fd, model::InetSocket& s);
  void LeaveRepair();

  pid_t pid_;
  bool tcp_established_;
  UniqueFd pidfd_;
  sys::NetLock lock_;
  std::vector<UniqueFd> repaired_;
};

}  // namespace cryo::dump
