#include "base/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"

namespace cryo {

Status ReadFull(int fd, std::span<std::byte> buf, std::string_view what) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read {}", what);
    if (n == 0)
      return MakeError(ErrorKind::kCorruptImage, "read {}: truncated ({} of {} bytes)", what, done,
                       buf.size());
    done += static_cast<size_t>(n);
  }
  return {};
}

Status WriteFull(int fd, std::span<const std::byte> buf, std::string_view what) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("write {}", what);
    done += static_cast<size_t>(n);
  }
  return {};
}

Status PreadFull(int fd, std::span<std::byte> buf, uint64_t offset, std::string_view what) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read {} at {}", what, offset + done);
    if (n == 0)
      return MakeError(ErrorKind::kCorruptImage, "read {}: truncated at {}", what, offset + done);
    done += static_cast<size_t>(n);
  }
  return {};
}

Status PwriteFull(int fd, std::span<const std::byte> buf, uint64_t offset, std::string_view what) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("write {} at {}", what, offset + done);
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<std::string> ReadWholeFd(int fd, std::string_view what) {
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read {}", what);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open {}", path);
  return ReadWholeFd(fd.get(), path);
}

Status WriteWholeFile(const std::string& path, std::string_view data, int mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return ErrnoError("create {}", path);
  return WriteFull(fd.get(), std::as_bytes(std::span(data.data(), data.size())), path);
}

}  // namespace cryo
