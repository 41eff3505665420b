#include "dump/capture_fds.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string_view>

#include "base/io.h"
#include "dump/capture_shmem.h"
#include "dump/fd_inet.h"
#include "dump/fd_kinds.h"
#include "dump/fd_tty.h"
#include "dump/unix_diag.h"
#include "proc/fdinfo.h"
#include "proc/tasks.h"

namespace cryo::dump {
namespace {

// Character devices that are reopened by path: stateless, the same on every machine.
bool IsSafeCharDevice(std::string_view path) {
  return path == "/dev/null" || path == "/dev/zero" || path == "/dev/full" ||
         path == "/dev/random" || path == "/dev/urandom";
}

constexpr std::string_view kDeleted = " (deleted)";

struct FileKey {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileKey&) const = default;
};

Result<model::Fd> CaptureOne(pid_t pid, int fd, FileKey& key, ShmemCollector* shmem,
                             InetSession* inet) {
  std::string link = fmt::format("/proc/{}/fd/{}", pid, fd);
  std::string target = CRYO_TRY(proc::ReadLink(link));
  std::string info_text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/fdinfo/{}", pid, fd)));
  auto info = CRYO_TRY_CTX(proc::ParseFdInfo(info_text), "fdinfo {} of pid {}", fd, pid);
  struct stat st {};
  if (::stat(link.c_str(), &st) < 0) return ErrnoError("stat {}", link);
  key = {st.st_dev, st.st_ino};

  model::Fd out;
  out.fd = fd;
  out.path = target;
  out.flags = info.flags & ~static_cast<uint32_t>(O_CLOEXEC);
  out.cloexec = (info.flags & O_CLOEXEC) != 0;
  out.pos = info.pos;
  auto unsupported = [&](std::string_view why) {
    return MakeError(ErrorKind::kUnsupported, "pid {}: fd {} ({}): {}", pid, fd, target, why);
  };
  bool deleted = target.ends_with(kDeleted);
  CRYO_TRYV(CaptureLocks(info, out));
  if (!out.locks.empty() && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return unsupported("locks on this kind of file are not supported");
  }
  if (S_ISREG(st.st_mode)) {
    if (shmem != nullptr && CRYO_TRY(shmem->AddFd(pid, out, st))) return out;
    if (deleted) return unsupported("open files that were deleted are not supported yet");
    out.type = model::FdType::kRegular;
    out.file = model::FileIdOf(st);
    return out;
  }
  if (S_ISDIR(st.st_mode)) {
    if (deleted) return unsupported("deleted directories are not supported");
    out.type = model::FdType::kDirectory;
    return out;
  }
  if (S_ISCHR(st.st_mode) && IsSafeCharDevice(target)) {
    out.type = model::FdType::kCharDevice;
    out.rdev = st.st_rdev;
    return out;
  }
  if (S_ISCHR(st.st_mode) && IsTerminalDevice(st.st_rdev)) {
    CRYO_TRYV(CaptureTty(pid, st.st_rdev, out));  // dump/fd_tty.h
    return out;
  }
  if (fd <= 2) {
    // stdio that is a pipe, socket or terminal belongs to whoever started the process: restore
    // hands over its own. A pipe keeps its inode: in a tree, a pipe with both ends inside (a
    // shell pipeline) is the tree's own (dump/tree_fds.cc).
    out.type = model::FdType::kInherited;
    if (S_ISFIFO(st.st_mode) && target.starts_with("pipe:[")) out.object_id = st.st_ino;
    return out;
  }
  if (S_ISFIFO(st.st_mode)) {
    if (deleted) return unsupported("FIFOs that were deleted are not supported");
    out.type = target.starts_with("pipe:[") ? model::FdType::kPipe : model::FdType::kFifo;
    out.object_id = st.st_ino;
    return out;
  }
  if (target == "anon_inode:[eventfd]") {
    out.type = model::FdType::kEventfd;
    CRYO_TRYV(CaptureEventfd(info, out));
    return out;
  }
  if (target == "anon_inode:[signalfd]") {
    out.type = model::FdType::kSignalfd;
    CRYO_TRYV(CaptureSignalfd(info, out));
    return out;
  }
  if (target == "anon_inode:[eventpoll]") {
    out.type = model::FdType::kEpoll;
    CRYO_TRYV(CaptureEpoll(info, out));
    return out;
  }
  if (target == "anon_inode:inotify") {
    out.type = model::FdType::kInotify;
    CRYO_TRYV(CaptureInotify(info, out));
    return out;
  }
  if (target == "anon_inode:[userfaultfd]") {
    CRYO_TRYV(CaptureUserfaultfd(info, out));  // dump/fd_userfaultfd.cc
    return out;
  }
  if (target == "anon_inode:[timerfd]") {
    out.type = model::FdType::kTimerfd;
    CRYO_TRYV(CaptureTimerfd(info, out));
    return out;
  }
  if (S_ISSOCK(st.st_mode)) {
    auto sock = QueryUnixSocket(st.st_ino);
    if (!sock && sock.error().sys_errno() == ENOENT) {
      if (inet == nullptr) return unsupported("sockets other than unix sockets are not supported");
      CRYO_TRYV(inet->Capture(fd, out));
      return out;
    }
    if (!sock) return std::unexpected(sock.error());
    constexpr int kEstablished = 1;
    constexpr int kListen = 10;
    if (sock->state == kListen) {
      if (sock->name.empty()) return unsupported("listening unix sockets must be bound");
      if (sock->name[0] != '\0' && sock->name[0] != '/') {
        return unsupported("unix sockets bound to a relative path are not supported");
      }
      if (sock->rqueue != 0) {
        return unsupported("connections waiting for accept on a unix socket are not supported");
      }
      out.type = model::FdType::kUnixListen;
      out.path = sock->name;
      out.sock_type = sock->type;
      out.counter = sock->wqueue;
      return out;
    }
    constexpr int kClose = 7;
    if (sock->state == kClose && sock->peer_ino == 0) {
      if (!sock->name.empty() && sock->name[0] != '\0' && sock->name[0] != '/') {
        return unsupported("unix sockets bound to a relative path are not supported");
      }
      if (sock->rqueue != 0) {
        return unsupported(fmt::format(
            "{} bytes queued on an unconnected unix socket (its senders may be anywhere) are not "
            "supported",
            sock->rqueue));
      }
      out.type = model::FdType::kUnixUnconnected;
      out.path = sock->name;
      out.sock_type = sock->type;
      return out;
    }
    if (sock->state != kEstablished || sock->peer_ino == 0) {
      return unsupported("unix sockets in this state are not supported");
    }
    // Connected, with its peer: a socketpair, or the two ends of a connection accepted on a named
    // listener (restored as a socketpair: data and peers are kept, the names they show in
    // getsockname/getpeername are not).
    out.type = model::FdType::kUnixPair;
    out.object_id = st.st_ino;
    out.peer_id = sock->peer_ino;
    out.sock_type = sock->type;
    return out;
  }
  if (S_ISCHR(st.st_mode)) return unsupported("this character device is not supported yet");
  return unsupported("this kind of file is not supported yet");
}

// kcmp tells whether two fds refer to one open file description; only fds of the same file
// (device and inode) can, so only those are compared.
Status FindShared(pid_t pid, std::vector<model::Fd>& fds, const std::vector<FileKey>& keys) {
  for (size_t i = 0; i < fds.size(); i++) {
    for (size_t j = 0; j < i; j++) {
      if (fds[j].shares_with != -1 || !(keys[j] == keys[i])) continue;
      long r = ::syscall(SYS_kcmp, pid, pid, KCMP_FILE, fds[j].fd, fds[i].fd);
      if (r < 0) return ErrnoError("kcmp fds {} and {} of pid {}", fds[j].fd, fds[i].fd, pid);
      if (r == 0) {
        fds[i].shares_with = fds[j].fd;
        break;
      }
    }
  }
  return {};
}

}  // namespace

Result<std::vector<model::Fd>> CaptureFds(pid_t pid, int skip_fd, ShmemCollector* shmem,
                                          InetSession* inet, bool in_tree) {
  std::vector<model::Fd> out;
  std::vector<FileKey> keys;
  auto fds = CRYO_TRY_CTX(proc::ListFds(pid), "list fds of pid {}", pid);
  for (int fd : fds) {
    if (fd == skip_fd) continue;
    FileKey key;
    out.push_back(CRYO_TRY(CaptureOne(pid, fd, key, shmem, inet)));
    keys.push_back(key);
  }
  CRYO_TRYV(FindShared(pid, out, keys));
  std::vector<uint64_t> inodes;
  for (const FileKey& k : keys) inodes.push_back(k.ino);
  CRYO_TRYV(CheckEpollTargets(pid, out, inodes));
  CRYO_TRYV(CapturePipes(pid, out, in_tree));
  CRYO_TRYV(CaptureSocketPairs(pid, out, in_tree));
  return out;
}

}  // namespace cryo::dump
