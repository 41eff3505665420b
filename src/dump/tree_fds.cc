#include "dump/tree_fds.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "base/unique_fd.h"
#include "dump/fd_kinds.h"
#include "sys/syscalls.h"

namespace cryo::dump {
namespace {

struct FdRef {
  size_t proc = 0;
  size_t idx = 0;
};

// One open file description: its fds in tree order (no dups), the first one represents it.
using Desc = std::vector<FdRef>;

class Linker {
 public:
  explicit Linker(model::ProcessTree& tree) : tree_(tree) {}

  Status Run() {
    CRYO_TRYV(FindDescriptions());
    CRYO_TRYV(LinkPipes());
    CRYO_TRYV(LinkSocketPairs());
    for (Desc& d : descs_) {
      if (Fd(d[0]).type == model::FdType::kInherited) continue;  // the caller's: each gets ours
      if (Spans(d) && Fd(d[0]).type == model::FdType::kEpoll) {
        return Refuse(d[0], "an epoll instance used by several processes is not supported");
      }
      if (Spans(d) && Fd(d[0]).type == model::FdType::kUserfaultfd) {
        // It belongs to the mm that created it, which restore cannot choose.
        return Refuse(d[0], "a userfaultfd used by several processes is not supported");
      }
      if (Spans(d)) shared_.insert(&d - descs_.data());
    }
    uint32_t next = 1;
    for (size_t d : shared_) {
      for (const FdRef& r : descs_[d]) Fd(r).shared_file = next;
      next++;
    }
    return {};
  }

 private:
  model::Process& Proc(const FdRef& r) { return tree_.processes[r.proc]; }
  model::Fd& Fd(const FdRef& r) { return tree_.processes[r.proc].fds[r.idx]; }
  bool Spans(const Desc& d) const {
    for (const FdRef& r : d) {
      if (r.proc != d[0].proc) return true;
    }
    return false;
  }
  Status Refuse(const FdRef& r, std::string_view why) {
    return MakeError(ErrorKind::kUnsupported, "pid {}: fd {} ({}): {}", Proc(r).pid, Fd(r).fd,
                     Fd(r).path, why);
  }
  int PidfdOf(size_t proc) {
    auto it = pidfds_.find(proc);
    if (it != pidfds_.end()) return it->second.get();
    auto fd = sys::PidfdOpen(tree_.processes[proc].pid);
    if (!fd) return -1;
    return pidfds_.emplace(proc, std::move(*fd)).first->second.get();
  }

  // Groups the fds of every live process into open file descriptions: only fds of the same file
  // (device and inode) can be one, and kcmp tells whether they are.
  Status FindDescriptions() {
    std::map<std::pair<dev_t, ino_t>, std::vector<size_t>> by_file;
    for (size_t i = 0; i < tree_.processes.size(); i++) {
      model::Process& p = tree_.processes[i];
      if (p.zombie) continue;
      for (size_t j = 0; j < p.fds.size(); j++) {
        const model::Fd& f = p.fds[j];
        if (f.shares_with != -1) continue;
        if (f.type == model::FdType::kInherited && f.object_id == 0) continue;
        struct stat st {};
        std::string link = fmt::format("/proc/{}/fd/{}", p.pid, f.fd);
        if (::stat(link.c_str(), &st) < 0) return ErrnoError("stat {}", link);
        auto& candidates = by_file[{st.st_dev, st.st_ino}];
        bool found = false;
        for (size_t d : candidates) {
          const FdRef& rep = descs_[d][0];
          if (rep.proc == i) continue;  // two non-dup fds of one process: two descriptions
          long r = ::syscall(SYS_kcmp, Proc(rep).pid, p.pid, KCMP_FILE, Fd(rep).fd, f.fd);
          if (r < 0) {
            return ErrnoError("kcmp fd {} of pid {} and fd {} of pid {}", Fd(rep).fd, Proc(rep).pid,
                              f.fd, p.pid);
          }
          if (r == 0) {
            descs_[d].push_back({i, j});
            found = true;
            break;
          }
        }
        if (!found) {
          candidates.push_back(descs_.size());
          descs_.push_back({{i, j}});
        }
      }
    }
    return {};
  }

  static bool IsPipeLike(const model::Fd& f) {
    return f.type == model::FdType::kPipe || f.type == model::FdType::kFifo ||
           (f.type == model::FdType::kInherited && f.object_id != 0);
  }
  static bool Reads(const model::Fd& f) { return (f.flags & O_ACCMODE) != O_WRONLY; }
  static bool Writes(const model::Fd& f) { return (f.flags & O_ACCMODE) != O_RDONLY; }

  // Pipes and FIFOs with fds in several processes, or missing an end in their process: checked
  // against the whole tree. Their descriptions become the tree's; the buffered bytes are copied
  // once, through the first reading description.
  Status LinkPipes() {
    std::map<uint64_t, std::vector<size_t>> objects;  // inode -> descriptions
    for (size_t d = 0; d < descs_.size(); d++) {
      if (IsPipeLike(Fd(descs_[d][0]))) objects[Fd(descs_[d][0]).object_id].push_back(d);
    }
    for (auto& [ino, ds] : objects) {
      std::set<size_t> procs;
      int readers = 0, writers = 0;
      bool all_inherited = true;
      for (size_t d : ds) {
        for (const FdRef& r : descs_[d]) procs.insert(r.proc);
        readers += Reads(Fd(descs_[d][0]));
        writers += Writes(Fd(descs_[d][0]));
        all_inherited &= Fd(descs_[d][0]).type == model::FdType::kInherited;
      }
      if (all_inherited && (readers == 0 || writers == 0)) continue;  // the caller's stdio
      FdRef first = descs_[ds[0]][0];
      for (size_t d : ds) {
        if (Fd(descs_[d][0]).type != model::FdType::kInherited) {
          first = descs_[d][0];
          break;
        }
      }
      if (readers == 0 || writers == 0) {
        // An end nobody holds (make gives jobs a stdin pipe without a writer, for EOF) is
        // restored closed as well; an end held outside the tree cannot be.
        if (auto outside = HolderOutside(ino)) {
          return Refuse(first, fmt::format("the {} end of this pipe is held by pid {}, outside the "
                                           "tree",
                                           readers == 0 ? "reading" : "writing", *outside));
        }
      }
      // Both ends in one process (and nowhere else): that process's own, captured already.
      if (procs.size() == 1 && readers > 0 && writers > 0 &&
          std::all_of(ds.begin(), ds.end(), [&](size_t d) {
            return Fd(descs_[d][0]).type != model::FdType::kInherited;
          })) {
        continue;
      }
      CRYO_TRYV(TakePipe(ds));
    }
    return {};
  }

  // A process outside the tree that holds pipe `ino` open, if any (a scan of /proc/*/fd).
  std::optional<pid_t> HolderOutside(uint64_t ino) {
    std::set<pid_t> inside;
    for (const model::Process& p : tree_.processes) inside.insert(p.pid);
    std::string want = fmt::format("pipe:[{}]", ino);
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return std::nullopt;
    std::optional<pid_t> found;
    while (dirent* e = ::readdir(proc)) {
      pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
      if (pid <= 0 || inside.contains(pid) || pid == ::getpid()) continue;
      std::string dir = fmt::format("/proc/{}/fd", pid);
      DIR* fds = ::opendir(dir.c_str());
      if (fds == nullptr) continue;
      while (dirent* f = ::readdir(fds)) {
        char target[64] = {};
        std::string link = dir + "/" + f->d_name;
        ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        if (n > 0 && want == std::string_view(target, static_cast<size_t>(n))) found = pid;
      }
      ::closedir(fds);
      if (found) break;
    }
    ::closedir(proc);
    return found;
  }

  Status TakePipe(const std::vector<size_t>& ds) {
    const FdRef* reader = nullptr;
    std::string data;
    for (size_t d : ds) {
      shared_.insert(d);
      for (const FdRef& r : descs_[d]) {
        model::Fd& f = Fd(r);
        if (f.type == model::FdType::kInherited) f.type = model::FdType::kPipe;
        if (data.empty() && !f.data.empty()) data = f.data;
        f.data.clear();
      }
      if (reader == nullptr && Reads(Fd(descs_[d][0]))) reader = &descs_[d][0];
    }
    // No reader anywhere: nothing can be buffered that anyone will read; the size still counts.
    const FdRef& any = reader != nullptr ? *reader : descs_[ds[0]][0];
    model::Fd& rf = Fd(any);
    std::string what = fmt::format("fd {} ({}) of pid {}", rf.fd, rf.path, Proc(any).pid);
    int pidfd = PidfdOf(any.proc);
    if (pidfd < 0) return ErrnoError("pidfd of pid {}", Proc(any).pid);
    UniqueFd mine = CRYO_TRY_CTX(sys::PidfdGetfd(pidfd, rf.fd), "take {}", what);
    int size = ::fcntl(mine.get(), F_GETPIPE_SZ);
    if (size < 0) return ErrnoError("F_GETPIPE_SZ {}", what);
    if (reader != nullptr && data.empty()) data = CRYO_TRY(PeekPipe(mine.get(), size, what));
    if (reader != nullptr) rf.data = std::move(data);
    for (size_t d : ds) {
      for (const FdRef& r : descs_[d]) Fd(r).pipe_size = static_cast<uint32_t>(size);
    }
    // Dups of these fds in each process follow their original.
    for (auto& p : tree_.processes) {
      for (model::Fd& f : p.fds) {
        if (f.shares_with == -1) continue;
        for (const model::Fd& o : p.fds) {
          if (o.fd == f.shares_with && o.type == model::FdType::kPipe &&
              f.type == model::FdType::kInherited && o.object_id == f.object_id) {
            f.type = model::FdType::kPipe;
            f.pipe_size = o.pipe_size;
          }
        }
      }
    }
    return {};
  }

  // Socketpairs whose two ends are not both in one process: each end's queue is read (and put
  // back from the peer) once, on the end's first description.
  Status LinkSocketPairs() {
    std::map<uint64_t, size_t> by_socket;  // inode -> first description of that socket
    for (size_t d = 0; d < descs_.size(); d++) {
      const model::Fd& f = Fd(descs_[d][0]);
      if (f.type == model::FdType::kUnixPair) by_socket.emplace(f.object_id, d);
    }
    for (const auto& [ino, d] : by_socket) {
      const model::Fd& f = Fd(descs_[d][0]);
      auto peer = by_socket.find(f.peer_id);
      if (peer == by_socket.end()) {
        return Refuse(descs_[d][0], "the peer of this unix socket is outside the tree");
      }
      std::set<size_t> procs;
      for (size_t x : {d, peer->second}) {
        for (const FdRef& r : descs_[x]) procs.insert(r.proc);
      }
      if (procs.size() == 1) continue;  // both ends in one process only: its own
      shared_.insert(d);
      const FdRef& me = descs_[d][0];
      const FdRef& other = descs_[peer->second][0];
      for (const FdRef& r : descs_[d]) Fd(r).messages.clear();
      int mine = PidfdOf(me.proc), theirs = PidfdOf(other.proc);
      if (mine < 0 || theirs < 0) return ErrnoError("pidfd for a socketpair");
      CRYO_TRYV(CaptureQueueAcross(Proc(me).pid, mine, Fd(me), theirs, Fd(other)));
    }
    return {};
  }

  model::ProcessTree& tree_;
  std::vector<Desc> descs_;
  std::set<size_t> shared_;  // descriptions restore creates in the cryo parent
  std::unordered_map<size_t, UniqueFd> pidfds_;
};

}  // namespace

Status LinkSharedFiles(model::ProcessTree& tree) { return Linker(tree).Run(); }

}  // namespace cryo::dump
