#include "proc/tasks.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "base/io.h"
#include "proc/text.h"

namespace cryo::proc {
namespace {

// ENOENT or ESRCH under /proc means the process (or thread) is gone, which callers handle apart
// from real failures.
std::unexpected<Error> ProcError(int err, std::string what, std::string_view path) {
  bool gone = (err == ENOENT || err == ESRCH) && path.starts_with("/proc/");
  return std::unexpected(
      Error(gone ? ErrorKind::kTraceeGone : ErrorKind::kSys, std::move(what), err));
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

// Numeric names in directory `path`, ascending, skipping the directory's own fd when
// listing our own fds.
Result<std::vector<int64_t>> ListNumbers(const std::string& path, bool skip_own_dir_fd) {
  std::unique_ptr<DIR, DirCloser> dir(opendir(path.c_str()));
  if (!dir) {
    int err = errno;
    return ProcError(err, "open " + path, path);
  }
  int own_fd = skip_own_dir_fd ? dirfd(dir.get()) : -1;
  std::vector<int64_t> out;
  for (;;) {
    errno = 0;
    dirent* ent = readdir(dir.get());
    if (ent == nullptr) {
      int err = errno;
      if (err != 0) return ProcError(err, "read " + path, path);
      break;
    }
    auto v = ParseUint(ent->d_name, 10);
    if (!v || *v > INT32_MAX) continue;  // ".", ".."
    if (static_cast<int64_t>(*v) == own_fd) continue;
    out.push_back(static_cast<int64_t>(*v));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<std::vector<pid_t>> ListTasks(pid_t pid) {
  auto nums = CRYO_TRY(ListNumbers("/proc/" + std::to_string(pid) + "/task", false));
  return std::vector<pid_t>(nums.begin(), nums.end());
}

Result<std::vector<int>> ListFds(pid_t pid) {
  auto nums = CRYO_TRY(ListNumbers("/proc/" + std::to_string(pid) + "/fd", pid == getpid()));
  return std::vector<int>(nums.begin(), nums.end());
}

Result<std::string> ReadLink(const std::string& path) {
  // /proc links report no size in lstat, so grow the buffer until the target fits.
  // The kernel never returns more than a page for /proc links, PATH_MAX elsewhere.
  constexpr size_t kMaxLink = 1 << 20;
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) {
      int err = errno;
      return ProcError(err, "readlink " + path, path);
    }
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    if (buf.size() >= kMaxLink) {
      return MakeError(ErrorKind::kInternal, "readlink {}: target longer than {}", path, kMaxLink);
    }
    buf.resize(buf.size() * 2);
  }
}

namespace {
Result<std::string> ReadProcFile(pid_t pid, std::string_view name) {
  std::string path = fmt::format("/proc/{}/{}", pid, name);
  auto text = ReadWholeFile(path);
  if (!text) return ProcError(text.error().sys_errno(), fmt::format("read {}", path), path);
  return text;
}
}  // namespace

Result<ProcStatus> ReadStatus(pid_t pid) {
  std::string text = CRYO_TRY(ReadProcFile(pid, "status"));
  return CRYO_TRY_CTX(ParseStatus(text), "status of pid {}", pid);
}

Result<ProcStat> ReadStat(pid_t pid) {
  std::string text = CRYO_TRY(ReadProcFile(pid, "stat"));
  return CRYO_TRY_CTX(ParseStat(text), "stat of pid {}", pid);
}

}  // namespace cryo::proc
