#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>

#include "base/io.h"
#include "base/unique_fd.h"
#include "dump/fd_kinds.h"
#include "proc/tasks.h"
#include "proc/text.h"

namespace cryo::dump {
namespace {

struct RawWatch {
  int32_t wd = 0;
  uint32_t mask = 0;
  dev_t dev = 0;
  int handle_type = 0;
  std::string handle;  // f_handle bytes
};

// "wd:<hex> ino:<hex> sdev:<hex> mask:<hex> ignored_mask:<hex> fhandle-bytes:<hex>
// fhandle-type:<hex> f_handle:<hex bytes>", the value of one "inotify" line.
std::optional<RawWatch> ParseWatch(std::string_view line) {
  RawWatch w;
  std::optional<uint64_t> wd, mask, sdev, type;
  std::string_view hex;
  std::string_view rest = line;
  for (std::string_view tok = proc::NextToken(&rest); !tok.empty(); tok = proc::NextToken(&rest)) {
    size_t colon = tok.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = tok.substr(0, colon), value = tok.substr(colon + 1);
    if (key == "wd") wd = proc::ParseUint(value, 16);
    if (key == "mask") mask = proc::ParseUint(value, 16);
    if (key == "sdev") sdev = proc::ParseUint(value, 16);
    if (key == "fhandle-type") type = proc::ParseUint(value, 16);
    if (key == "f_handle") hex = value;
  }
  if (!wd || !mask || !sdev || !type || hex.empty() || hex.size() % 2) return std::nullopt;
  for (size_t i = 0; i < hex.size(); i += 2) {
    auto byte = proc::ParseUint(hex.substr(i, 2), 16);
    if (!byte) return std::nullopt;
    w.handle.push_back(static_cast<char>(*byte));
  }
  w.wd = static_cast<int32_t>(*wd);
  w.mask = static_cast<uint32_t>(*mask);
  // The kernel's internal dev_t: major in the high 12 bits, minor in the low 20.
  w.dev = makedev(static_cast<unsigned>(*sdev >> 20), static_cast<unsigned>(*sdev & 0xfffff));
  w.handle_type = static_cast<int>(*type);
  return w;
}

// An fd on a mount of the filesystem with device `dev`, for open_by_handle_at (which refuses
// O_PATH fds there).
Result<UniqueFd> OpenMountOf(dev_t dev) {
  std::string text = CRYO_TRY(ReadWholeFile("/proc/self/mountinfo"));
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    std::string_view f = line;
    for (int i = 0; i < 4; i++) proc::NextToken(&f);
    std::string point(proc::NextToken(&f));
    if (point.find('\\') != std::string::npos) continue;  // escaped names: skip
    struct stat st {};
    if (::stat(point.c_str(), &st) == 0 && st.st_dev == dev) {
      UniqueFd fd(::open(point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (fd.valid()) return fd;
    }
  }
  return MakeError(ErrorKind::kUnsupported, "no mount of device {}:{} is visible to cryo",
                   major(dev), minor(dev));
}

// The path of the watched inode, from the file handle the kernel prints.
Result<std::string> PathOf(const RawWatch& w, int fd) {
  UniqueFd mount = CRYO_TRY_CTX(OpenMountOf(w.dev), "inotify fd {} watch {}", fd, w.wd);
  std::string buf(sizeof(file_handle) + w.handle.size(), '\0');
  auto* h = reinterpret_cast<file_handle*>(buf.data());
  h->handle_bytes = static_cast<unsigned>(w.handle.size());
  h->handle_type = w.handle_type;
  std::memcpy(h->f_handle, w.handle.data(), w.handle.size());
  UniqueFd target(::open_by_handle_at(mount.get(), h, O_PATH | O_CLOEXEC));
  if (!target.valid()) return ErrnoError("inotify fd {} watch {}: open by handle", fd, w.wd);
  std::string path = CRYO_TRY(proc::ReadLink(fmt::format("/proc/self/fd/{}", target.get())));
  if (path.ends_with(" (deleted)")) {
    return MakeError(ErrorKind::kUnsupported, "inotify fd {} watch {}: {}: watched file deleted",
                     fd, w.wd, path);
  }
  return path;
}

}  // namespace

Status CaptureInotify(const proc::FdInfo& info, model::Fd& out) {
  for (const auto& [key, value] : info.extra) {
    if (key != "inotify") continue;
    auto w = ParseWatch(value);
    if (!w) {
      return MakeError(ErrorKind::kInternal, "inotify fd {}: cannot read fdinfo line '{}'", out.fd,
                       value);
    }
    out.watches.push_back({w->wd, w->mask, CRYO_TRY(PathOf(*w, out.fd))});
  }
  std::sort(out.watches.begin(), out.watches.end(),
            [](const auto& a, const auto& b) { return a.wd < b.wd; });
  return {};
}

}  // namespace cryo::dump
