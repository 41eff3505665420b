#include "dump/tracking.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/io.h"
#include "base/log.h"
#include "image/codec.h"
#include "image/format.h"
#include "image/image_dir.h"
#include "proc/stat.h"
#include "proc/tasks.h"
#include "ptrace/remote_syscalls.h"
#include "sys/compat_uapi.h"
#include "sys/syscalls.h"

namespace cryo::dump {
namespace {

constexpr const char* kUffdLink = "anon_inode:[userfaultfd]";

std::unexpected<Error> BadState(const std::string& path, std::string_view what) {
  return MakeError(ErrorKind::kCorruptImage, "{}: {}", path, what);
}

// The highest free fd number of `pid` below `below` (and below its RLIMIT_NOFILE).
Result<int> PickRemoteFd(pid_t pid, uint64_t below = ~0ull) {
  rlimit lim = CRYO_TRY(sys::Prlimit(pid, RLIMIT_NOFILE));
  uint64_t top = std::min<uint64_t>({lim.rlim_cur, 1u << 20, below});
  // The highest free number below the soft limit: out of the way of the program's own fds.
  for (uint64_t fd = top; fd-- > 3;) {
    if (::access(fmt::format("/proc/{}/fd/{}", pid, fd).c_str(), F_OK) != 0) {
      return static_cast<int>(fd);
    }
  }
  return MakeError(ErrorKind::kUnsupported, "pid {} has no free fd for the dirty tracker", pid);
}

// The sorted, page-aligned, non-overlapping [start, end] pairs of array `key`.
Result<std::vector<mem::PageRange>> ReadRanges(const nlohmann::json& j, const char* key,
                                               const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() > (1u << 20)) {
    return BadState(path, fmt::format("'{}' missing", key));
  }
  std::vector<mem::PageRange> out;
  for (const auto& r : *it) {
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_unsigned() ||
        !r[1].is_number_unsigned()) {
      return BadState(path, fmt::format("a range of '{}' is not [start, end]", key));
    }
    mem::PageRange pr{r[0].get<uint64_t>(), r[1].get<uint64_t>()};
    if ((pr.start | pr.end) & 4095 || pr.start >= pr.end ||
        (!out.empty() && pr.start < out.back().end)) {
      return BadState(path, fmt::format("'{}' are not sorted page-aligned ranges", key));
    }
    out.push_back(pr);
  }
  return out;
}

}  // namespace

namespace {

Result<TrackingState> ParseTrackingState(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) return BadState(path, "a process state is not a JSON object");
  TrackingState s;
  auto num = [&](const char* key, uint64_t max) -> Result<uint64_t> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned() || it->get<uint64_t>() > max) {
      return BadState(path, fmt::format("'{}' missing or out of range", key));
    }
    return it->get<uint64_t>();
  };
  s.pid = static_cast<pid_t>(CRYO_TRY(num("pid", 1u << 22)));
  if (s.pid <= 0) return BadState(path, "'pid' out of range");
  s.start_time = CRYO_TRY(num("start_time", ~0ull));
  s.fd = static_cast<int>(CRYO_TRY(num("fd", 1u << 20)));
  s.round = static_cast<uint32_t>(CRYO_TRY(num("round", 1u << 30)));
  s.ranges = CRYO_TRY(ReadRanges(j, "ranges", path));
  s.hot = CRYO_TRY(ReadRanges(j, "hot", path));
  for (const auto& h : s.hot) {
    auto in = std::upper_bound(s.ranges.begin(), s.ranges.end(), h.start,
                               [](uint64_t a, const mem::PageRange& r) { return a < r.end; });
    if (in == s.ranges.end() || in->start > h.start || in->end < h.end) {
      return BadState(path, fmt::format("hot range {:#x}-{:#x} is not tracked", h.start, h.end));
    }
  }
  return s;
}

constexpr size_t kMaxTrackedProcesses = 4096;

}  // namespace

Result<std::vector<TrackingState>> ReadTrackingStates(const std::string& dir) {
  std::string path = dir + "/" + kTrackingFile;
  std::string text = CRYO_TRY(ReadWholeFile(path));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return BadState(path, "not a JSON object");
  std::vector<TrackingState> out;
  auto procs = j.find("processes");
  if (procs == j.end()) {  // the single-process form of older images
    out.push_back(CRYO_TRY(ParseTrackingState(j, path)));
    return out;
  }
  if (!procs->is_array() || procs->empty() || procs->size() > kMaxTrackedProcesses) {
    return BadState(path, "'processes' is not an array of 1 to 4096 states");
  }
  for (const auto& pj : *procs) {
    TrackingState s = CRYO_TRY(ParseTrackingState(pj, path));
    if (FindTracking(out, s.pid) != nullptr) {
      return BadState(path, fmt::format("pid {} is tracked twice", s.pid));
    }
    out.push_back(std::move(s));
  }
  return out;
}

Status WriteTrackingStates(const std::string& dir, const std::vector<TrackingState>& states) {
  auto array = [](const std::vector<mem::PageRange>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& r : v) a.push_back({r.start, r.end});
    return a;
  };
  nlohmann::json procs = nlohmann::json::array();
  for (const TrackingState& s : states) {
    procs.push_back({{"pid", s.pid},
                     {"start_time", s.start_time},
                     {"fd", s.fd},
                     {"round", s.round},
                     {"ranges", array(s.ranges)},
                     {"hot", array(s.hot)}});
  }
  nlohmann::json j = {{"processes", std::move(procs)}};
  return WriteWholeFile(dir + "/" + kTrackingFile, j.dump() + "\n");
}

const TrackingState* FindTracking(const std::vector<TrackingState>& states, pid_t pid) {
  for (const TrackingState& s : states) {
    if (s.pid == pid) return &s;
  }
  return nullptr;
}

Result<uint64_t> ProcessStartTime(pid_t pid) {
  auto st = CRYO_TRY(proc::ReadStat(pid));
  return st.start_time;
}

Result<std::vector<TrackingState>> ReadParentTrackingTree(const std::string& dir,
                                                          const std::string& rel, pid_t root) {
  if (rel.empty() || rel[0] == '/' || rel.find('\0') != std::string::npos) {
    return MakeError(ErrorKind::kInvalidArg,
                     "--prev-images-dir '{}' must be a path relative to the image directory", rel);
  }
  std::string parent = dir + "/" + rel;
  auto states = ReadTrackingStates(parent);
  if (!states) {
    if (states.error().sys_errno() == ENOENT) {
      return MakeError(ErrorKind::kInvalidArg,
                       "{} has no {}: not a pre-dump image (pre-dump first)", parent,
                       kTrackingFile);
    }
    return std::unexpected(states.error());
  }
  if ((*states)[0].pid != root) {
    return MakeError(ErrorKind::kInvalidArg, "{} is a pre-dump of pid {}, not of pid {}", parent,
                     (*states)[0].pid, root);
  }
  std::vector<TrackingState> out;
  for (TrackingState& s : *states) {
    auto start = ProcessStartTime(s.pid);
    bool same = start && *start == s.start_time;
    if (s.pid == root && !start) {
      return MakeError(ErrorKind::kInvalidArg, "pid {} is gone: it exited since the pre-dump in {}",
                       root, parent);
    }
    if (s.pid == root && !same) {
      return MakeError(ErrorKind::kInvalidArg,
                       "pid {} is a different process than the one pre-dumped in {} (it exited "
                       "and its pid was reused)",
                       root, parent);
    }
    if (!same) {
      log::Info("pid {} of the pre-dump in {} exited since; its pid is {}", s.pid, parent,
                start ? "reused by a new process" : "free");
      continue;
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<mem::PageRange>> ReadParentCoverage(const std::string& dir,
                                                       const std::string& rel, pid_t pid) {
  std::string path = dir + "/" + rel;
  auto pdir = CRYO_TRY(image::ImageDir::Open(path));
  std::string name = image::PagemapFileName(pid);
  std::string file = CRYO_TRY(image::ReadImageFile(pdir, name, image::kMaxPayloadSize + 64));
  model::Process pm;
  pm.pid = pid;
  CRYO_TRYV_CTX(image::DecodePagemap(file, pm), "{}/{}", path, name);
  std::vector<mem::PageRange> out;
  for (const model::PageRun& r : pm.pagemap) {
    if (!(r.flags & (model::kPagePresent | model::kPageInParent))) continue;
    mem::PageRange pr{r.vaddr, r.vaddr + (r.nr_pages << 12)};
    if (pr.end <= pr.start || (!out.empty() && pr.start < out.back().end)) {
      return MakeError(ErrorKind::kCorruptImage, "{}/{}: runs are not sorted", path, name);
    }
    if (!out.empty() && out.back().end == pr.start) {
      out.back().end = pr.end;
    } else {
      out.push_back(pr);
    }
  }
  return out;
}

Result<UniqueFd> CreateRemoteUffd(const ptrace::Tracee& leader, int* remote_fd) {
  pid_t pid = leader.tid();
  int target = CRYO_TRY(PickRemoteFd(pid));
  auto gadget = CRYO_TRY(ptrace::FindSyscallGadget(pid));
  auto rs = CRYO_TRY(ptrace::RemoteSyscalls::Start(leader, gadget));
  int64_t fd = CRYO_TRY(rs.Call(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0) return SysError(static_cast<int>(-fd), fmt::format("userfaultfd in pid {}", pid));
  int64_t r = CRYO_TRY(rs.Call(SYS_dup3, fd, target, O_CLOEXEC));
  CRYO_TRY(rs.Call(SYS_close, fd));
  if (r < 0)
    return SysError(static_cast<int>(-r), fmt::format("dup3 to {} in pid {}", target, pid));
  CRYO_TRYV(rs.Finish());
  *remote_fd = target;
  return TakeRemoteUffd(pid, target);
}

Result<UniqueFd> TakeRemoteUffd(pid_t pid, int fd) {
  auto link = proc::ReadLink(fmt::format("/proc/{}/fd/{}", pid, fd));
  if (!link || *link != kUffdLink) {
    return MakeError(ErrorKind::kInvalidArg,
                     "pid {} no longer holds the dirty tracker at fd {}: the parent is not the "
                     "latest round of its chain, or a later round failed; start again with a "
                     "pre-dump without --prev-images-dir",
                     pid, fd);
  }
  auto pidfd = CRYO_TRY(sys::PidfdOpen(pid));
  return sys::PidfdGetfd(pidfd.get(), fd);
}

Status RemoveStaleTrackers(const ptrace::Tracee& leader) {
  pid_t pid = leader.tid();
  auto fds = CRYO_TRY_CTX(proc::ListFds(pid), "list fds of pid {}", pid);
  for (int fd : fds) {
    auto link = proc::ReadLink(fmt::format("/proc/{}/fd/{}", pid, fd));
    if (!link || *link != kUffdLink) continue;
    auto info = ReadWholeFile(fmt::format("/proc/{}/fdinfo/{}", pid, fd));
    if (!info) continue;
    // "API:\t<api>:<features>:<ioctls>" (hex), see userfaultfd's show_fdinfo.
    size_t at = info->find("API:\t");
    if (at == std::string::npos) continue;
    size_t colon = info->find(':', at + 5);
    if (colon == std::string::npos) continue;
    // Bit 31 is the kernel's internal "initialized" flag (UFFDIO_API done), not a feature.
    uint64_t features = std::strtoull(info->c_str() + colon + 1, nullptr, 16) & 0x7fffffffu;
    if (features != (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)) continue;
    log::Info("pid {}: closing cryo's dirty tracker left at fd {} by an earlier pre-dump chain",
              pid, fd);
    CRYO_TRYV(CloseRemoteFd(leader, fd));
  }
  return {};
}

Result<int> MoveRemoteFd(const ptrace::Tracee& leader, int fd) {
  pid_t pid = leader.tid();
  int target = CRYO_TRY(PickRemoteFd(pid, static_cast<uint64_t>(fd)));
  auto gadget = CRYO_TRY(ptrace::FindSyscallGadget(pid));
  auto rs = CRYO_TRY(ptrace::RemoteSyscalls::Start(leader, gadget));
  int64_t r = CRYO_TRY(rs.Call(SYS_dup3, fd, target, O_CLOEXEC));
  if (r >= 0) CRYO_TRY(rs.Call(SYS_close, fd));
  CRYO_TRYV(rs.Finish());
  if (r < 0) {
    return SysError(static_cast<int>(-r), fmt::format("dup3({}, {}) in pid {}", fd, target, pid));
  }
  return target;
}

Status CloseRemoteFd(const ptrace::Tracee& leader, int fd) {
  pid_t pid = leader.tid();
  auto gadget = CRYO_TRY(ptrace::FindSyscallGadget(pid));
  auto rs = CRYO_TRY(ptrace::RemoteSyscalls::Start(leader, gadget));
  int64_t r = CRYO_TRY(rs.Call(SYS_close, fd));
  CRYO_TRYV(rs.Finish());
  if (r < 0) return SysError(static_cast<int>(-r), fmt::format("close({}) in pid {}", fd, pid));
  return {};
}

}  // namespace cryo::dump
