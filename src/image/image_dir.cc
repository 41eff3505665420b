#include "image/image_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "base/io.h"

namespace cryo::image {
namespace {

// mkdir -p with mode 0700 for every directory it makes.
Status MakeDirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) == 0 || errno == EEXIST) continue;
    return ErrnoError("mkdir {}", prefix);
  }
  return {};
}

bool IsCryoSideFile(std::string_view name) {
  return name.ends_with(".log") || name.ends_with(".json");
}

Status CheckNameIsPlain(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return MakeError(ErrorKind::kInvalidArg, "'{}' is not a plain file name", name);
  }
  return {};
}

}  // namespace

Result<ImageDir> ImageDir::Create(const std::string& path) {
  if (path.empty()) return MakeError(ErrorKind::kInvalidArg, "empty image directory path");
  CRYO_TRYV(MakeDirs(path));
  ImageDir dir = CRYO_TRY(Open(path));
  std::vector<std::string> names = CRYO_TRY(ListImageDir(dir));
  for (const std::string& name : names) {
    if (name.ends_with(".img")) {
      return MakeError(ErrorKind::kInvalidArg,
                       "image directory {} already holds an image ({}); use an empty directory",
                       path, name);
    }
    if (!IsCryoSideFile(name)) {
      return MakeError(ErrorKind::kInvalidArg,
                       "image directory {} holds {}, which cryo did not write; use an empty "
                       "directory",
                       path, name);
    }
  }
  if (::fchmodat(dir.fd(), ".", 0700, 0) != 0) return ErrnoError("chmod 0700 {}", path);
  return dir;
}

Result<ImageDir> ImageDir::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open image directory {}", path);
  return ImageDir(path, std::move(fd));
}

Status WriteImageFile(const ImageDir& dir, std::string_view name, std::string_view bytes) {
  CRYO_TRYV(CheckNameIsPlain(name));
  std::string n(name);
  UniqueFd fd(::openat(dir.fd(), n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoError("create {}/{}", dir.path(), name);
  auto written = WriteFull(fd.get(), std::as_bytes(std::span(bytes.data(), bytes.size())), n);
  if (!written) {
    ::unlinkat(dir.fd(), n.c_str(), 0);
    return Wrapped(std::move(written).error(), dir.path());
  }
  return {};
}

Result<std::string> ReadImageFile(const ImageDir& dir, std::string_view name, uint64_t max_size) {
  CRYO_TRYV(CheckNameIsPlain(name));
  std::string n(name);
  // O_NONBLOCK: a FIFO planted in a hostile image must not hang us before fstat rejects it.
  UniqueFd fd(::openat(dir.fd(), n.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ELOOP) return MakeError(ErrorKind::kCorruptImage, "{} is a symlink", name);
    return ErrnoError("open {}", name);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("stat {}", name);
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorKind::kCorruptImage, "{} is not a regular file", name);
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return MakeError(ErrorKind::kCorruptImage, "{} has {} bytes, more than the limit {}", name,
                     st.st_size, max_size);
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  CRYO_TRYV(ReadFull(fd.get(), std::as_writable_bytes(std::span(data.data(), data.size())), n));
  // A file that grew since fstat: refuse rather than read a moving target.
  char extra;
  ssize_t more = ::read(fd.get(), &extra, 1);
  if (more != 0) {
    return MakeError(ErrorKind::kCorruptImage, "{} changed size while being read", name);
  }
  return data;
}

Result<uint64_t> ImageFileSize(const ImageDir& dir, std::string_view name) {
  CRYO_TRYV(CheckNameIsPlain(name));
  std::string n(name);
  struct stat st;
  if (::fstatat(dir.fd(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError("stat {}", name);
  }
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorKind::kCorruptImage, "{} is not a regular file", name);
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<std::vector<std::string>> ListImageDir(const ImageDir& dir) {
  UniqueFd fd(::openat(dir.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open {}", dir.path());
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd.get()), &::closedir);
  if (!d) return ErrnoError("fdopendir {}", dir.path());
  fd.Release();  // now owned by `d`
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d.get())) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  if (errno != 0) return ErrnoError("read directory {}", dir.path());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace cryo::image
