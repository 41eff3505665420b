#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include "restore/fd_kinds.h"

namespace cryo::restore {

// The socket file a bind left behind outlives the socket: a stale one is removed, but only when
// it is a socket, so no other file is ever deleted.
Result<UniqueFd> OpenUnixListener(const model::Fd& f) {
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
  if (::listen(fd.get(), static_cast<int>(f.counter)) < 0) {
    return ErrnoError("fd {}: listen on {}", f.fd, f.path);
  }
  if (::fcntl(fd.get(), F_SETFL, static_cast<int>(f.flags) & ~O_ACCMODE) < 0) {
    return ErrnoError("fd {}: set flags {:#o}", f.fd, f.flags);
  }
  return fd;
}

}  // namespace cryo::restore
