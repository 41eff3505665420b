#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include "restore/fd_kinds.h"

namespace cryo::restore {

namespace {

// A unix socket of f.sock_type bound to f.path. The socket file a bind left behind outlives the
// socket: a stale one is removed, but only when it is a socket, so no other file is ever deleted.
Result<UniqueFd> BoundUnixSocket(const model::Fd& f) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (f.path.empty() || f.path.size() >= sizeof addr.sun_path) {
    return MakeError(ErrorKind::kCorruptImage, "fd {}: bad unix socket name", f.fd);
  }
  std::memcpy(addr.sun_path, f.path.data(), f.path.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + f.path.size());
  bool abstract = f.path[0] == '\0';
  UniqueFd fd(::socket(AF_UNIX, f.sock_type | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("fd {}: unix socket type {}", f.fd, f.sock_type);
  struct stat st {};
  if (!abstract && ::lstat(f.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
      ::unlink(f.path.c_str()) < 0) {
    return ErrnoError("fd {}: remove stale socket {}", f.fd, f.path);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) < 0) {
    return ErrnoError("fd {}: bind {}", f.fd, f.path);
  }
  return fd;
}

Status SetFlags(const model::Fd& f, int fd) {
  if (::fcntl(fd, F_SETFL, static_cast<int>(f.flags) & ~O_ACCMODE) < 0) {
    return ErrnoError("fd {}: set flags {:#o}", f.fd, f.flags);
  }
  return {};
}

}  // namespace

Result<UniqueFd> OpenUnixListener(const model::Fd& f) {
  UniqueFd fd = CRYO_TRY(BoundUnixSocket(f));
  if (::listen(fd.get(), static_cast<int>(f.counter)) < 0) {
    return ErrnoError("fd {}: listen on {}", f.fd, f.path);
  }
  CRYO_TRYV(SetFlags(f, fd.get()));
  return fd;
}

Result<UniqueFd> OpenUnixUnconnected(const model::Fd& f) {
  UniqueFd fd;
  if (f.path.empty()) {
    fd.Reset(::socket(AF_UNIX, f.sock_type | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return ErrnoError("fd {}: unix socket type {}", f.fd, f.sock_type);
  } else {
    fd = CRYO_TRY(BoundUnixSocket(f));
  }
  CRYO_TRYV(SetFlags(f, fd.get()));
  return fd;
}

}  // namespace cryo::restore
