#include "sys/syscalls.h"

#include <linux/sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "sys/compat_uapi.h"

namespace cryo::sys {

Result<UniqueFd> PidfdOpen(pid_t pid, unsigned flags) {
  long fd = syscall(SYS_pidfd_open, pid, flags);
  if (fd < 0) return ErrnoError("pidfd_open pid {}", pid);
  return UniqueFd(static_cast<int>(fd));
}

Result<UniqueFd> PidfdGetfd(int pidfd, int fd) {
  long got = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  if (got < 0) return ErrnoError("pidfd_getfd fd {} through pidfd {}", fd, pidfd);
  return UniqueFd(static_cast<int>(got));
}

Result<pid_t> Clone3WithTids(std::span<const pid_t> tids, uint64_t flags) {
  if ((flags & (CSIGNAL | CLONE_VM)) != 0) {
    return MakeError(ErrorKind::kInvalidArg, "clone3: flags {:#x} not fork-like", flags);
  }
  clone_args args{};
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(tids.data());
  args.set_tid_size = tids.size();
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) {
    return ErrnoError("clone3 with pid {} (flags {:#x})", tids.empty() ? 0 : tids[0], flags);
  }
  return static_cast<pid_t>(pid);
}

Result<pid_t> Clone3WithTid(pid_t tid, uint64_t flags) {
  if (tid == 0) return Clone3WithTids({}, flags);
  return Clone3WithTids(std::span<const pid_t>(&tid, 1), flags);
}

Result<size_t> ProcessVmReadv(pid_t pid, std::span<const iovec> local,
                              std::span<const iovec> remote) {
  ssize_t n = process_vm_readv(pid, local.data(), local.size(), remote.data(), remote.size(), 0);
  if (n < 0) {
    return ErrnoError("process_vm_readv pid {} ({} ranges from {:#x})", pid, remote.size(),
                      remote.empty() ? 0 : reinterpret_cast<uint64_t>(remote[0].iov_base));
  }
  return static_cast<size_t>(n);
}

Result<size_t> ProcessVmRead(pid_t pid, RemoteAddr addr, std::span<std::byte> out) {
  iovec local{out.data(), out.size()};
  iovec remote{reinterpret_cast<void*>(addr.value()), out.size()};
  return ProcessVmReadv(pid, std::span(&local, 1), std::span(&remote, 1));
}

Status Tgkill(pid_t tgid, pid_t tid, int sig) {
  if (syscall(SYS_tgkill, tgid, tid, sig) < 0) {
    return ErrnoError("tgkill {}/{} signal {}", tgid, tid, sig);
  }
  return {};
}

Result<rlimit> Prlimit(pid_t pid, int resource) {
  rlimit out{};
  if (prlimit(pid, static_cast<__rlimit_resource>(resource), nullptr, &out) < 0) {
    return ErrnoError("prlimit pid {} resource {}", pid, resource);
  }
  return out;
}

Status SetPrlimit(pid_t pid, int resource, const rlimit& limit) {
  if (prlimit(pid, static_cast<__rlimit_resource>(resource), &limit, nullptr) < 0) {
    return ErrnoError("set prlimit pid {} resource {} to {}/{}", pid, resource, limit.rlim_cur,
                      limit.rlim_max);
  }
  return {};
}

pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

Result<size_t> SendWithFds(int sock, std::span<const std::byte> bytes, std::span<const int> fds,
                           int flags) {
  iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(fds.size() * sizeof(int)));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  ssize_t n = ::sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
  if (n < 0) return ErrnoError("send {} bytes and {} fds", bytes.size(), fds.size());
  return static_cast<size_t>(n);
}

Result<Received> RecvWithFds(int sock, std::span<std::byte> buf, size_t max_fds, int flags) {
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(max_fds * sizeof(int)));
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  if (n < 0) return ErrnoError("receive a message");
  Received r;
  r.bytes = static_cast<size_t>(n);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      r.fds.emplace_back(fd);
    }
  }
  r.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return r;
}

}  // namespace cryo::sys
