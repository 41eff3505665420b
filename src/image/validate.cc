#include "image/validate.h"

#include <algorithm>
#include <bit>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/types.h"
#include "image/format.h"
#include "image/pages_file.h"
#include "image/task_control_codec.h"
#include "image/tty_codec.h"

namespace cryo::image {
namespace {

constexpr uint32_t kKnownProt = 0x7;  // PROT_READ | PROT_WRITE | PROT_EXEC
constexpr uint32_t kKnownVmaFlags = (model::kVmaUffdMinor << 1) - 1;
constexpr uint32_t kUffdModeFlags =
    model::kVmaUffdMissing | model::kVmaUffdWp | model::kVmaUffdMinor;
constexpr uint32_t kKnownPageFlags = model::kPagePresent | model::kPageZero | model::kPageInParent |
                                     model::kPageLazy | model::kPageInherited;
constexpr uint64_t kRobustListHeadBytes = 24;  // struct robust_list_head on x86-64
constexpr uint32_t kContentFlags =
    model::kPagePresent | model::kPageZero | model::kPageInParent | model::kPageInherited;

template <typename... Args>
std::unexpected<Error> Corrupt(fmt::format_string<Args...> f, Args&&... args) {
  return MakeError(ErrorKind::kCorruptImage, f, std::forward<Args>(args)...);
}

Status CheckPstreeEntry(const model::Process& p) {
  if (p.pid <= 0) return Corrupt("pid {} is not positive", p.pid);
  if (p.ppid < 0 || p.pgid < 0 || p.sid < 0) {
    return Corrupt("process {}: negative ppid, pgid or sid ({}, {}, {})", p.pid, p.ppid, p.pgid,
                   p.sid);
  }
  if (p.threads.empty()) return Corrupt("process {} has no threads", p.pid);
  if (p.threads.front().tid != p.pid) {
    return Corrupt("process {}: first thread is {}, not the leader", p.pid, p.threads.front().tid);
  }
  for (const model::Thread& t : p.threads) {
    if (t.tid <= 0) return Corrupt("process {}: thread id {} is not positive", p.pid, t.tid);
  }
  if (p.zombie) {
    if (p.threads.size() != 1)
      return Corrupt("zombie {} lists {} threads", p.pid, p.threads.size());
    // A wait status: an exit code (code << 8) or a signal 1..64, with the core-dump bit.
    int sig = p.exit_status & 0x7f;
    bool exited = sig == 0 && (p.exit_status & ~0xff00) == 0;
    bool killed = sig >= 1 && sig <= model::kNumSignals && (p.exit_status & ~0xff) == 0;
    if (!exited && !killed) {
      return Corrupt("zombie {}: {:#x} is not a wait status", p.pid, p.exit_status);
    }
  } else if (p.exit_status != 0) {
    return Corrupt("process {} is no zombie but has an exit status", p.pid);
  }
  return {};
}

Status CheckVma(const model::Vma& v, size_t i) {
  if (!PageAligned(v.start) || !PageAligned(v.end) || v.start >= v.end || v.end > kTaskSize) {
    return Corrupt("vma {} [{:#x}-{:#x}) is not a page-aligned range below {:#x}", i, v.start,
                   v.end, kTaskSize);
  }
  if (!PageAligned(v.pgoff))
    return Corrupt("vma {}: file offset {:#x} not page-aligned", i, v.pgoff);
  if (v.prot & ~kKnownProt) return Corrupt("vma {}: unknown prot bits {:#x}", i, v.prot);
  if (v.flags & ~kKnownVmaFlags) return Corrupt("vma {}: unknown flag bits {:#x}", i, v.flags);
  return {};
}

Status CheckRunFlags(const model::PageRun& r, size_t i) {
  if (r.flags & ~kKnownPageFlags) return Corrupt("page run {}: unknown flags {:#x}", i, r.flags);
  if (r.flags == 0) return Corrupt("page run {}: no flags", i);
  if (std::popcount(r.flags & kContentFlags) > 1 ||
      ((r.flags & model::kPageZero) && r.flags != model::kPageZero) ||
      ((r.flags & model::kPageInherited) && r.flags != model::kPageInherited)) {
    return Corrupt("page run {}: contradictory flags {:#x}", i, r.flags);
  }
  return {};
}

bool IsPrivate(model::VmaKind kind) {
  return kind == model::VmaKind::kAnonPrivate || kind == model::VmaKind::kFilePrivate;
}

// The vma holding [start, end), which must be private; vmas are sorted and disjoint.
Status CheckRunInVma(const std::vector<model::Vma>& vmas, uint64_t start, uint64_t end, size_t i) {
  auto it = std::upper_bound(vmas.begin(), vmas.end(), start,
                             [](uint64_t a, const model::Vma& v) { return a < v.start; });
  if (it == vmas.begin() || std::prev(it)->end < end) {
    return Corrupt("page run {} [{:#x}-{:#x}) is not inside one vma", i, start, end);
  }
  const model::Vma& v = *std::prev(it);
  if (!IsPrivate(v.kind)) {
    return Corrupt("page run {} [{:#x}-{:#x}) is in vma [{:#x}-{:#x}) of kind {}, not private", i,
                   start, end, v.start, v.end, static_cast<uint32_t>(v.kind));
  }
  return {};
}

}  // namespace

Status ValidatePstree(const model::ProcessTree& tree) {
  if (tree.processes.empty()) return Corrupt("no processes");
  std::unordered_set<pid_t> seen, zombies;
  std::vector<pid_t> tids;
  for (size_t i = 0; i < tree.processes.size(); ++i) {
    const model::Process& p = tree.processes[i];
    CRYO_TRYV(CheckPstreeEntry(p));
    if (i > 0 && !seen.contains(p.ppid)) {
      return Corrupt("process {}: parent {} is not listed before it", p.pid, p.ppid);
    }
    if (i == 0 && p.zombie) return Corrupt("the root process {} is a zombie", p.pid);
    if (i > 0 && zombies.contains(p.ppid)) {
      return Corrupt("process {}: parent {} is a zombie", p.pid, p.ppid);
    }
    if (p.zombie) zombies.insert(p.pid);
    if (!seen.insert(p.pid).second) return Corrupt("pid {} appears twice", p.pid);
    for (const model::Thread& t : p.threads) tids.push_back(t.tid);
  }
  std::sort(tids.begin(), tids.end());
  if (auto dup = std::adjacent_find(tids.begin(), tids.end()); dup != tids.end()) {
    return Corrupt("thread id {} appears twice", *dup);
  }
  return {};
}

// The restorer hands these to the kernel as they are: refuse what it would reject or misuse.
Status CheckThread(const model::Thread& t) {
  if (t.tid <= 0) return Corrupt("thread id {} is not positive", t.tid);
  if (t.comm.size() > 15) return Corrupt("thread {}: name of {} bytes", t.tid, t.comm.size());
  if (t.robust_list != 0 && t.robust_list_len != kRobustListHeadBytes) {
    return Corrupt("thread {}: robust list length {}, the kernel's is {}", t.tid, t.robust_list_len,
                   kRobustListHeadBytes);
  }
  if (t.rseq != 0 && (t.rseq % 32 != 0 || t.rseq_len < 32 || t.rseq >= kTaskSize)) {
    return Corrupt("thread {}: rseq area {:#x} (length {}) is not a valid registration", t.tid,
                   t.rseq, t.rseq_len);
  }
  return {};
}

Status ValidateCore(const model::Process& p) {
  if (p.umask > 0777) return Corrupt("umask {:#o} out of range", p.umask);
  if (p.rlimits.size() != model::kNumRlimits) {
    return Corrupt("{} rlimits, expected {}", p.rlimits.size(), model::kNumRlimits);
  }
  if (p.sigactions.size() != model::kNumSignals) {
    return Corrupt("{} sigactions, expected {}", p.sigactions.size(), model::kNumSignals);
  }
  if (p.threads.empty()) return Corrupt("no threads");
  for (const model::Thread& t : p.threads) CRYO_TRYV(CheckThread(t));
  return ValidateTaskControl(p);
}

Status ValidateMm(const model::Process& p) {
  for (size_t i = 0; i < p.vmas.size(); ++i) {
    CRYO_TRYV(CheckVma(p.vmas[i], i));
    if (i > 0 && p.vmas[i - 1].end > p.vmas[i].start) {
      return Corrupt("vma {} [{:#x}-{:#x}) overlaps or precedes vma {} [{:#x}-{:#x})", i,
                     p.vmas[i].start, p.vmas[i].end, i - 1, p.vmas[i - 1].start, p.vmas[i - 1].end);
    }
  }
  return {};
}

// The per-kind fields a restore acts on: buffered data that fits its pipe, known flag bits.
Status CheckFdKindState(const model::Fd& f) {
  bool is_pipe = f.type == model::FdType::kPipe || f.type == model::FdType::kFifo;
  if (!is_pipe && !f.data.empty()) return Corrupt("fd {} holds data but is no pipe", f.fd);
  if (is_pipe && f.data.size() > f.pipe_size) {
    return Corrupt("fd {}: {} buffered bytes exceed the pipe size {}", f.fd, f.data.size(),
                   f.pipe_size);
  }
  if (!f.messages.empty() && f.type != model::FdType::kUnixPair) {
    return Corrupt("fd {} has queued messages but is no unix socket", f.fd);
  }
  if (!f.watches.empty() && f.type != model::FdType::kInotify) {
    return Corrupt("fd {} has inotify watches but is no inotify", f.fd);
  }
  for (size_t i = 0; i < f.watches.size(); i++) {
    if (f.watches[i].wd <= 0 || (i > 0 && f.watches[i - 1].wd >= f.watches[i].wd)) {
      return Corrupt("fd {}: inotify watches not sorted by positive wd", f.fd);
    }
  }
  if (!f.epoll_targets.empty() && f.type != model::FdType::kEpoll) {
    return Corrupt("fd {} has epoll targets but is no epoll", f.fd);
  }
  for (const model::FileLock& l : f.locks) {
    if (l.start > l.end)
      return Corrupt("fd {}: lock range {}-{} is reversed", f.fd, l.start, l.end);
  }
  if (f.kind_flags &
      ~uint32_t{model::kEventfdSemaphore | model::kTtyForeground | model::kUffdApiDone}) {
    return Corrupt("fd {}: unknown kind flags {:#x}", f.fd, f.kind_flags);
  }
  if (f.type != model::FdType::kUserfaultfd &&
      (f.uffd_features != 0 || (f.kind_flags & model::kUffdApiDone))) {
    return Corrupt("fd {} has userfaultfd state but is no userfaultfd", f.fd);
  }
  // Created by the restored process itself: never by the cryo parent for several processes.
  if (f.type == model::FdType::kUserfaultfd && f.shared_file != 0) {
    return Corrupt("fd {}: a userfaultfd shared across processes", f.fd);
  }
  // Bit 31 is the kernel's internal "initialized" flag, never a feature.
  if (f.uffd_features >> 31) {
    return Corrupt("fd {}: userfaultfd features {:#x} beyond bit 30", f.fd, f.uffd_features);
  }
  if (f.uffd_features != 0 && !(f.kind_flags & model::kUffdApiDone)) {
    return Corrupt("fd {}: userfaultfd features without UFFDIO_API", f.fd);
  }
  return {};
}

// Ranges registered with the process's own userfaultfd: modes only on registered mappings of
// memory userfaultfd handles, and exactly one userfaultfd (past UFFDIO_API) to register them with.
Status ValidateUffdRanges(const model::Process& p) {
  size_t uffds = 0;
  bool api_done = false;
  for (const model::Fd& f : p.fds) {
    if (f.type != model::FdType::kUserfaultfd || f.shares_with >= 0) continue;
    uffds++;
    api_done = (f.kind_flags & model::kUffdApiDone) != 0;
  }
  for (size_t i = 0; i < p.vmas.size(); i++) {
    const model::Vma& v = p.vmas[i];
    if (!(v.flags & kUffdModeFlags)) continue;
    if (!(v.flags & model::kVmaUffdRegistered)) {
      return Corrupt("vma {}: userfaultfd modes on a mapping not registered", i);
    }
    if (v.kind != model::VmaKind::kAnonPrivate && v.kind != model::VmaKind::kAnonShared &&
        v.kind != model::VmaKind::kSysvShm && v.kind != model::VmaKind::kFileShared) {
      return Corrupt("vma {} [{:#x}-{:#x}): userfaultfd registration on a mapping of kind {}", i,
                     v.start, v.end, int(v.kind));
    }
    if (uffds != 1 || !api_done) {
      return Corrupt(
          "vma {} [{:#x}-{:#x}) is registered with userfaultfd, but the process has {} "
          "userfaultfd fds{}",
          i, v.start, v.end, uffds, uffds == 1 ? " (without UFFDIO_API)" : "");
    }
  }
  return {};
}

Status ValidateFds(const model::Process& p) {
  for (size_t i = 0; i < p.fds.size(); ++i) {
    if (p.fds[i].fd < 0) return Corrupt("fd number {} is negative", p.fds[i].fd);
    if (i > 0 && p.fds[i - 1].fd >= p.fds[i].fd) {
      return Corrupt("fd {} follows fd {}: not sorted or duplicated", p.fds[i].fd, p.fds[i - 1].fd);
    }
    // A dup names an earlier fd of the list that is itself no dup.
    int with = p.fds[i].shares_with;
    if (with != -1) {
      auto it = std::find_if(p.fds.begin(), p.fds.begin() + i,
                             [&](const model::Fd& f) { return f.fd == with; });
      if (with < 0 || it == p.fds.begin() + i || it->shares_with != -1) {
        return Corrupt("fd {} shares its file with fd {}, which is not an earlier unshared fd",
                       p.fds[i].fd, with);
      }
    }
    CRYO_TRYV(CheckFdKindState(p.fds[i]));
    CRYO_TRYV(ValidateInetFd(p.fds[i]));
  }
  CRYO_TRYV(ValidateUffdRanges(p));
  return ValidateTtyFds(p);
}

Status ValidatePagesFileName(std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos ||
      name.find("..") != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Corrupt("pages file name '{}' is not a plain file name", name);
  }
  return {};
}

bool NeedsPagesFile(const model::Process& p) {
  return std::any_of(p.pagemap.begin(), p.pagemap.end(),
                     [](const model::PageRun& r) { return r.flags & model::kPagePresent; });
}

Status ValidatePagemap(const model::Process& p, uint64_t pages_size) {
  if (!p.pages_file.empty() || NeedsPagesFile(p)) CRYO_TRYV(ValidatePagesFileName(p.pages_file));
  CRYO_TRYV(ValidatePagesCompression(p.pages_compression, p.pages_file, pages_size));
  pages_size = PagesContentSize(p.pages_compression, pages_size);
  uint64_t prev_end = 0;
  for (size_t i = 0; i < p.pagemap.size(); ++i) {
    const model::PageRun& r = p.pagemap[i];
    if (!PageAligned(r.vaddr) || r.vaddr >= kTaskSize || r.nr_pages == 0 ||
        r.nr_pages > (kTaskSize - r.vaddr) / kPageSize) {
      return Corrupt("page run {} ({} pages at {:#x}) is not a page-aligned range below {:#x}", i,
                     r.nr_pages, r.vaddr, kTaskSize);
    }
    uint64_t end = r.vaddr + r.nr_pages * kPageSize;  // no overflow: checked above
    if (r.vaddr < prev_end) {
      return Corrupt("page run {} at {:#x} overlaps or precedes the run before it", i, r.vaddr);
    }
    prev_end = end;
    CRYO_TRYV(CheckRunFlags(r, i));
    CRYO_TRYV(CheckRunInVma(p.vmas, r.vaddr, end, i));
    if (r.flags == model::kPageLazy) {  // served by the page server: only where lazy restore can
      auto v =
          std::prev(std::upper_bound(p.vmas.begin(), p.vmas.end(), r.vaddr,
                                     [](uint64_t a, const model::Vma& x) { return a < x.start; }));
      if (!model::LazyEligible(*v) && v->shmem_id == 0) {  // (a shmem id is refused below)
        return Corrupt(
            "page run {} at {:#x}: lazy content in a mapping lazy restore cannot "
            "serve",
            i, r.vaddr);
      }
    }
    if (!(r.flags & model::kPagePresent)) continue;
    uint64_t len = r.nr_pages * kPageSize;
    if (!PageAligned(r.offset) || r.offset > pages_size || len > pages_size - r.offset) {
      return Corrupt("page run {}: {} bytes at offset {:#x} are not inside {} ({} bytes)", i, len,
                     r.offset, p.pages_file, pages_size);
    }
  }
  return {};
}

Status ValidateInheritedPages(const model::ProcessTree& tree) {
  std::unordered_map<pid_t, const model::Process*> by_pid;
  for (const model::Process& p : tree.processes) by_pid[p.pid] = &p;
  for (const model::Process& p : tree.processes) {
    const model::Process* parent = nullptr;
    auto vma = p.vmas.begin();
    for (const model::PageRun& r : p.pagemap) {
      if (!(r.flags & model::kPageInherited)) continue;
      if (parent == nullptr) {
        auto it = by_pid.find(p.ppid);
        if (p.pid == tree.root_pid || it == by_pid.end() || it->second->zombie) {
          return Corrupt(
              "pagemap-{}.img: pages inherited from parent {}, which is not a live "
              "process of the tree",
              p.pid, p.ppid);
        }
        parent = it->second;
      }
      while (vma != p.vmas.end() && vma->end <= r.vaddr) ++vma;
      if (vma == p.vmas.end() || vma->start > r.vaddr ||
          model::InheritSource(parent->vmas, *vma) == nullptr) {
        return Corrupt(
            "pagemap-{}.img: pages at {:#x} inherited from parent {}, which has no "
            "mapping they can come from",
            p.pid, r.vaddr, p.ppid);
      }
    }
  }
  return {};
}

Status ValidateSharedFiles(const model::ProcessTree& tree) {
  std::unordered_map<uint32_t, const model::Fd*> first;
  for (const model::Process& p : tree.processes) {
    for (const model::Fd& f : p.fds) {
      if (f.shared_file == 0) continue;
      if (f.shared_file > kMaxSharedFiles) {
        return Corrupt("fds-{}.img: fd {}: shared file id {} out of range", p.pid, f.fd,
                       f.shared_file);
      }
      if (f.shares_with != -1 || f.type == model::FdType::kInherited ||
          f.type == model::FdType::kEpoll) {
        return Corrupt("fds-{}.img: fd {} cannot carry a shared file id", p.pid, f.fd);
      }
      auto [it, added] = first.emplace(f.shared_file, &f);
      if (!added && (it->second->type != f.type || it->second->object_id != f.object_id ||
                     it->second->peer_id != f.peer_id)) {
        return Corrupt("fds-{}.img: fd {}: shared file {} is another file elsewhere", p.pid, f.fd,
                       f.shared_file);
      }
    }
  }
  return {};
}

}  // namespace cryo::image
