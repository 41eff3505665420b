#include "restore/child.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "base/io.h"
#include "base/parallel.h"
#include "base/unique_fd.h"
#include "restore/fd_kinds.h"
#include "restore/fd_tty.h"
#include "restore/lazy.h"
#include "restore/tree.h"
#include "restorer/abi.h"
#include "restorer/blob.h"
#include "sys/kernel_abi.h"

namespace cryo::restore {
namespace {

namespace abi = cryo::restorer;

Status ReserveKeepRegion(const Plan& plan) {
  void* want = reinterpret_cast<void*>(plan.keep_start);
  void* got = ::mmap(want, plan.keep_end - plan.keep_start, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
  if (got == MAP_FAILED) return ErrnoError("reserve keep region at {:#x}", plan.keep_start);
  if (got != want) return MakeError(ErrorKind::kInternal, "keep region landed elsewhere");
  return {};
}

Status MapAt(uint64_t addr, uint64_t len, int prot, int flags, int fd, uint64_t off,
             std::string_view what) {
  void* got = ::mmap(reinterpret_cast<void*>(addr), len, prot, flags | MAP_FIXED, fd,
                     static_cast<off_t>(off));
  if (got == MAP_FAILED) return ErrnoError("premap {} at {:#x}", what, addr);
  return {};
}

Status PremapOne(const model::Vma& v, uint64_t at) {
  switch (v.kind) {
    case model::VmaKind::kAnonPrivate: {
      int flags = MAP_PRIVATE | MAP_ANONYMOUS;
      if (v.flags & model::kVmaGrowsDown) flags |= MAP_GROWSDOWN;
      return MapAt(at, v.length(), PROT_READ | PROT_WRITE, flags, -1, 0, v.name);
    }
    case model::VmaKind::kFilePrivate: {
      UniqueFd fd(::open(v.name.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoError("open mapped file {}", v.name);
      return MapAt(at, v.length(), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), v.pgoff, v.name);
    }
    case model::VmaKind::kFileShared: {
      UniqueFd fd(::open(v.name.c_str(), O_RDWR | O_CLOEXEC));
      if (!fd.valid()) fd.Reset(::open(v.name.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoError("open mapped file {}", v.name);
      return MapAt(at, v.length(), v.prot & ~PROT_EXEC, MAP_SHARED, fd.get(), v.pgoff, v.name);
    }
    default:
      return MakeError(ErrorKind::kUnsupported, "mapping {} cannot be premapped", v.name);
  }
}

struct FillJob {
  uint64_t dst;
  uint64_t len;
  uint64_t offset;
  const image::PagesReader* src;
};

// Copy-on-write: moves the slot's pages from the parent's premap area, inherited through fork,
// and drops those this process does not share: its own are written over them by the fill, pages
// it never had come back empty (anonymous) or from the file (file-private).
Status PremapInherited(const model::Process& p, const PremapSlot& s) {
  const model::Vma& v = p.vmas[s.vma_index];
  void* got = ::mremap(reinterpret_cast<void*>(s.inherit_from), v.length(), v.length(),
                       MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(s.addr));
  if (got == MAP_FAILED) {
    return ErrnoError("move inherited {} from {:#x} to {:#x}", v.name, s.inherit_from, s.addr);
  }
  auto run = std::lower_bound(p.pagemap.begin(), p.pagemap.end(), v.start,
                              [](const model::PageRun& r, uint64_t a) { return r.vaddr < a; });
  uint64_t pos = v.start;
  auto drop = [&](uint64_t end) -> Status {
    if (pos < end && ::madvise(reinterpret_cast<void*>(s.addr + (pos - v.start)), end - pos,
                               MADV_DONTNEED) < 0) {
      return ErrnoError("drop pages {:#x}-{:#x} not inherited", pos, end);
    }
    return {};
  };
  for (; run != p.pagemap.end() && run->vaddr < v.end; ++run) {
    if (!(run->flags & model::kPageInherited)) continue;
    CRYO_TRYV(drop(run->vaddr));
    pos = run->vaddr + (run->nr_pages << 12);
  }
  return drop(v.end);
}

Status PremapAndFill(const model::Process& p, const Plan& plan, int pages_fd,
                     const image::PageChain* chain, const ShmemObjects* shmem,
                     const std::vector<bool>* lazy, bool lazy_parent_pages) {
  for (const PremapSlot& s : plan.premap) {
    const model::Vma& v = p.vmas[s.vma_index];
    if (s.inherit_from != 0) {
      CRYO_TRYV(PremapInherited(p, s));
    } else if (v.shmem_id != 0 && shmem != nullptr) {
      CRYO_TRYV(PremapShmem(v, s.addr, *shmem));
    } else {
      CRYO_TRYV(PremapOne(v, s.addr));
    }
  }
  // Readers of this image's pages file (index 0) and of each parent's (1 + level): plain or
  // compressed, every block read on its own.
  std::vector<image::PagesReader> readers{
      image::PagesReader(pages_fd, p.pages_file, &p.pages_compression)};
  for (size_t l = 0; chain != nullptr && l < chain->depth(); l++) {
    readers.push_back(chain->pages(l));
  }
  // Pagemap runs are sorted by address, like the vmas and the premap slots.
  std::vector<FillJob> jobs;
  uint64_t total = 0;
  size_t slot = 0;
  std::vector<image::PageSegment> segs;
  for (const model::PageRun& run : p.pagemap) {
    if (!(run.flags & (model::kPagePresent | model::kPageInParent))) continue;
    while (slot < plan.premap.size() && p.vmas[plan.premap[slot].vma_index].end <= run.vaddr) {
      slot++;
    }
    if (slot == plan.premap.size()) {
      return MakeError(ErrorKind::kCorruptImage, "page run {:#x} outside every mapping", run.vaddr);
    }
    const model::Vma& v = p.vmas[plan.premap[slot].vma_index];
    uint64_t base = plan.premap[slot].addr - v.start;
    if (lazy != nullptr && (*lazy)[plan.premap[slot].vma_index] &&
        ((run.flags & model::kPagePresent) ||
         (lazy_parent_pages && (run.flags & model::kPageInParent)))) {
      continue;  // delivered by the lazy-pages daemon
    }
    if (run.flags & model::kPagePresent) {
      jobs.push_back({base + run.vaddr, run.nr_pages << 12, run.offset, &readers[0]});
      total += run.nr_pages << 12;
      continue;
    }
    if (chain == nullptr) {
      return MakeError(ErrorKind::kCorruptImage, "page run {:#x} is in a parent; there is none",
                       run.vaddr);
    }
    segs.clear();
    CRYO_TRYV(chain->Resolve(run.vaddr, run.nr_pages << 12, segs));
    for (const auto& sg : segs) {
      jobs.push_back({base + sg.vaddr, sg.len, sg.offset, &readers[1 + sg.level]});
      total += sg.len;
    }
  }
  // Filling fresh memory is bound by page allocation: use every core for large images. The
  // threads are joined before this returns, long before the blob unmaps their stacks.
  constexpr uint64_t kParallelFrom = 64ull << 20;
  size_t workers = total >= kParallelFrom ? CopyWorkers() : 1;
  uint64_t share = (total / workers + 4096) & ~4095ull;  // page-aligned: no page split
  return ParallelFor(workers, [&](size_t w) -> Status {
    image::BlockCache cache;
    uint64_t lo = w * share, hi = lo + share, at = 0;
    for (const FillJob& j : jobs) {
      uint64_t s = std::max(lo, at), e = std::min(hi, at + j.len);
      if (s < e) {
        uint64_t off = s - at;
        CRYO_TRYV(
            j.src->Read(j.offset + off, {reinterpret_cast<std::byte*>(j.dst + off), e - s}, cache));
      }
      at += j.len;
    }
    return {};
  });
}

// Moves cryo's own fds above every fd number the target uses, so installing the target's fds
// cannot clobber them.
Result<int> MoveAbove(int fd, int floor) {
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
  if (moved < 0) return ErrnoError("move internal fd {} above {}", fd, floor);
  ::close(fd);
  return moved;
}

Status CloseStrayFds(const std::set<int>& keep) {
  std::vector<int> open_fds;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return ErrnoError("open /proc/self/fd");
  int dfd = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd != dfd && !keep.contains(fd)) open_fds.push_back(fd);
  }
  ::closedir(d);
  for (int fd : open_fds) ::close(fd);
  return {};
}

// A new fd for `f` that is opened by path: regular file, directory, character device.
Result<UniqueFd> OpenByPath(const model::Fd& f) {
  int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
  UniqueFd fd(::open(f.path.c_str(), flags | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("fd {}: open {}", f.fd, f.path);
  if (f.type != model::FdType::kCharDevice &&
      ::lseek(fd.get(), static_cast<off_t>(f.pos), SEEK_SET) < 0) {
    return ErrnoError("fd {}: seek {} to {}", f.fd, f.path, f.pos);
  }
  return fd;
}

// The objects several fds share, held while the fds are installed.
struct SharedObjects {
  PipeSet pipes;
  SocketPairSet socketpairs;
  const ChildShmemFds* shmem = nullptr;
  PtySet ptys;  // restore/fd_tty.h
};

Result<UniqueFd> OpenFdObject(const model::Fd& f, SharedObjects& shared) {
  switch (f.type) {
    case model::FdType::kPipe:
    case model::FdType::kFifo:
      return shared.pipes.Open(f);
    case model::FdType::kUnixPair:
      return shared.socketpairs.Open(f);
    case model::FdType::kUnixListen:
      return OpenUnixListener(f);
    case model::FdType::kUnixUnconnected:
      return OpenUnixUnconnected(f);
    case model::FdType::kInotify:
      return OpenInotify(f);
    case model::FdType::kInet:
      return OpenInetSocket(f);
    case model::FdType::kEventfd:
      return OpenEventfd(f);
    case model::FdType::kUserfaultfd:
      return OpenUserfaultfd(f);
    case model::FdType::kSignalfd:
      return OpenSignalfd(f);
    case model::FdType::kTimerfd:
      return OpenTimerfd(f);
    case model::FdType::kEpoll:
      return OpenEpoll(f);
    case model::FdType::kShmem:
      return shared.shmem->Open(f);
    case model::FdType::kPtyMaster:
    case model::FdType::kPtySlave:
      return shared.ptys.Open(f);
    case model::FdType::kCallerTty:
      return OpenCallerTty(f);
    default:
      return OpenByPath(f);
  }
}

Status InstallFd(const model::Fd& f, SharedObjects& shared, const std::map<uint32_t, int>& tree) {
  int tmp = -1;
  if (f.shared_file != 0 && f.shares_with < 0) {
    // Created once by the cryo parent and inherited: the same open file as in other processes.
    auto it = tree.find(f.shared_file);
    if (it == tree.end()) return MakeError(ErrorKind::kInternal, "fd {}: no shared file", f.fd);
    if (::dup3(it->second, f.fd, f.cloexec ? O_CLOEXEC : 0) < 0) {
      return ErrnoError("fd {}: install shared file {}", f.fd, f.shared_file);
    }
    return {};
  }
  if (f.shares_with >= 0) {
    // A dup of an fd installed before it (the list is sorted): share the open file.
    if (::dup3(f.shares_with, f.fd, f.cloexec ? O_CLOEXEC : 0) < 0) {
      return ErrnoError("fd {}: dup of fd {}", f.fd, f.shares_with);
    }
    return {};
  }
  if (f.type == model::FdType::kInherited) {
    if (::fcntl(f.fd, F_GETFD) >= 0)
      tmp = f.fd;  // the caller's own stdio, already in place
    else
      tmp = ::open("/dev/null", O_RDWR);  // the caller has none to give
    if (tmp < 0) return ErrnoError("fd {}: open /dev/null", f.fd);
  } else {
    tmp = CRYO_TRY(OpenFdObject(f, shared)).Release();
  }
  if (tmp != f.fd) {
    if (::dup3(tmp, f.fd, f.cloexec ? O_CLOEXEC : 0) < 0) return ErrnoError("fd {}: dup3", f.fd);
    ::close(tmp);
  } else if (::fcntl(f.fd, F_SETFD, f.cloexec ? FD_CLOEXEC : 0) < 0) {
    return ErrnoError("fd {}: set close-on-exec", f.fd);
  }
  return {};
}

Status InstallFds(const model::Process& p, int floor, const ChildShmemFds& shmem,
                  const std::map<uint32_t, int>& tree) {
  SharedObjects shared{PipeSet(p.fds, floor), SocketPairSet(p.fds, floor), &shmem,
                       PtySet(p.fds, floor)};
  for (const auto& f : p.fds) CRYO_TRYV(InstallFd(f, shared, tree));
  for (const auto& [id, fd] : tree) ::close(fd);
  // Once every fd is in place: epoll targets are added through their numbers.
  for (const auto& f : p.fds) {
    CRYO_TRYV(AddEpollTargets(f));
    CRYO_TRYV(RetakeLocks(f));
  }
  return {};
}

// Both only matter from now on: personality for later mmap/execve, no_new_privs for execve.
Status RestoreExecutionDomain(const model::Process& p) {
  if (::personality(p.personality) < 0) return ErrnoError("personality {:#x}", p.personality);
  if (p.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    return ErrnoError("set no_new_privs");
  }
  return {};
}

Status RestoreFsContext(const model::Process& p) {
  if (::chdir(p.cwd.c_str()) < 0) return ErrnoError("chdir {}", p.cwd);
  if (p.root != "/" && ::chroot(p.root.c_str()) < 0) return ErrnoError("chroot {}", p.root);
  ::umask(p.umask);
  return {};
}

Status RestoreSigactions(const model::Process& p) {
  for (int sig = 1; sig <= model::kNumSignals; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const model::SigAction& a = p.sigactions[sig - 1];
    sys::KernelSigaction ka{a.handler, a.flags, a.restorer, a.mask};
    if (::syscall(SYS_rt_sigaction, sig, &ka, nullptr, 8) < 0) {
      return ErrnoError("rt_sigaction {}", sig);
    }
  }
  return {};
}

// Pending signals go back into the queues while every signal is blocked; the final mask set by
// the parent decides which are delivered once the process runs. The other threads do not exist
// yet: each queues its own in the blob (Arena::signals).
Status QueuePendingSignals(const model::Process& p) {
  pid_t self = ::getpid();
  auto signo = [](const model::SigInfo& si) {
    int s = 0;
    std::memcpy(&s, si.raw.data(), sizeof s);
    return s;
  };
  for (const auto& si : p.shared_pending) {
    if (::syscall(SYS_rt_sigqueueinfo, self, signo(si), si.raw.data()) < 0) {
      return ErrnoError("queue process signal {}", signo(si));
    }
  }
  for (const auto& si : p.threads.at(0).pending) {
    if (::syscall(SYS_rt_tgsigqueueinfo, self, self, signo(si), si.raw.data()) < 0) {
      return ErrnoError("queue thread signal {}", signo(si));
    }
  }
  return {};
}

template <typename T>
T* ArenaArray(abi::Arena* a, uint32_t& offset_field, uint64_t& cursor, size_t count) {
  cursor = (cursor + 7) & ~7ull;
  offset_field = static_cast<uint32_t>(cursor);
  T* out = reinterpret_cast<T*>(reinterpret_cast<char*>(a) + cursor);
  cursor += count * sizeof(T);
  return out;
}

// The other threads and their private pending signals, for the blob to create and queue.
void FillThreads(const model::Process& p, const Plan& plan, abi::Arena* a, uint64_t& cursor) {
  const size_t n = p.threads.size() - 1;
  a->thread_count = static_cast<uint32_t>(n);
  auto* specs = ArenaArray<abi::ThreadSpec>(a, a->threads_offset, cursor, n);
  size_t signals = 0;
  for (size_t i = 1; i <= n; i++) {
    const model::Thread& t = p.threads[i];
    abi::ThreadSpec& s = specs[i - 1];
    std::memset(&s, 0, sizeof s);
    s.tid = t.tid;
    s.stack_top = plan.stack_top + i * abi::kThreadStackSize;
    s.altstack_sp = t.altstack.sp;
    s.altstack_size = t.altstack.size;
    s.altstack_flags = t.altstack.flags;
    s.rseq = t.rseq;
    s.rseq_len = t.rseq_len;
    s.rseq_sig = t.rseq_sig;
    s.robust_list = t.robust_list;
    s.robust_list_len = t.robust_list_len;
    s.clear_child_tid = t.clear_child_tid;
    std::strncpy(s.comm, t.comm.c_str(), sizeof s.comm - 1);
    s.signal_first = static_cast<uint32_t>(signals);
    s.signal_count = static_cast<uint32_t>(t.pending.size());
    signals += t.pending.size();
  }
  a->signal_count = static_cast<uint32_t>(signals);
  auto* queued = ArenaArray<abi::QueuedSignal>(a, a->signals_offset, cursor, signals);
  for (size_t i = 1; i <= n; i++) {
    for (const model::SigInfo& si : p.threads[i].pending) {
      queued->tid = p.threads[i].tid;
      std::memcpy(&queued->signo, si.raw.data(), sizeof queued->signo);
      std::memcpy(queued->info, si.raw.data(), sizeof queued->info);
      queued++;
    }
  }
}

// Whether premap slot i holds lazy pages.
bool LazySlot(const ChildContext& ctx, size_t i) {
  if (ctx.tree->lazy_vmas.empty()) return false;
  return ctx.tree->lazy_vmas[ctx.index][ctx.plan->premap[i].vma_index];
}

Status BuildArena(const ChildContext& ctx, int exe_fd, int lazy_uffd,
                  const std::vector<int>& close_fds) {
  const model::Process& p = *ctx.process;
  const Plan& plan = *ctx.plan;
  if (::mprotect(reinterpret_cast<void*>(plan.arena_addr),
                 plan.arena_size + abi::kBlobStackSize + plan.thread_stacks_bytes,
                 PROT_READ | PROT_WRITE) < 0) {
    return ErrnoError("map arena");
  }
  auto* a = reinterpret_cast<abi::Arena*>(plan.arena_addr);
  std::memset(a, 0, sizeof *a);
  a->magic = abi::kArenaMagic;
  a->abi_version = abi::kAbiVersion;
  a->keep_start = plan.keep_start;
  a->keep_end = plan.keep_end;
  a->task_size = 0x7ffffffff000ull;
  a->vdso_vvar_start = plan.vdso_vvar_start;
  uint64_t cursor = sizeof *a;

  a->vma_count = static_cast<uint32_t>(plan.premap.size());
  auto* moves = ArenaArray<abi::VmaMove>(a, a->vma_offset, cursor, plan.premap.size());
  for (size_t i = 0; i < plan.premap.size(); i++) {
    const model::Vma& v = p.vmas[plan.premap[i].vma_index];
    moves[i] = {plan.premap[i].addr, v.start, v.length(), v.prot,
                (v.flags & 0xff) | (LazySlot(ctx, i) ? abi::kMadvLazy : 0u)};
  }
  const model::MmInfo& mm = p.mm;
  a->start_code = mm.start_code;
  a->end_code = mm.end_code;
  a->start_data = mm.start_data;
  a->end_data = mm.end_data;
  a->start_brk = mm.start_brk;
  a->brk = mm.brk;
  a->start_stack = mm.start_stack;
  a->arg_start = mm.arg_start;
  a->arg_end = mm.arg_end;
  a->env_start = mm.env_start;
  a->env_end = mm.env_end;
  a->auxv_words = static_cast<uint32_t>(mm.auxv.size());
  auto* auxv = ArenaArray<uint64_t>(a, a->auxv_offset, cursor, mm.auxv.size());
  std::copy(mm.auxv.begin(), mm.auxv.end(), auxv);
  a->exe_fd = exe_fd;
  a->lazy_uffd = lazy_uffd;

  a->rlimit_count = static_cast<uint32_t>(std::min<size_t>(p.rlimits.size(), abi::kMaxRlimits));
  for (uint32_t i = 0; i < a->rlimit_count; i++)
    a->rlimits[i] = {p.rlimits[i].cur, p.rlimits[i].max};
  const model::Thread& leader = p.threads.at(0);
  a->altstack_sp = leader.altstack.sp;
  a->altstack_size = leader.altstack.size;
  a->altstack_flags = leader.altstack.flags;
  a->rseq = leader.rseq;
  a->rseq_len = leader.rseq_len;
  a->rseq_sig = leader.rseq_sig;
  a->robust_list = leader.robust_list;
  a->robust_list_len = leader.robust_list_len;
  a->clear_child_tid = leader.clear_child_tid;
  // cryo's own rseq registration (inherited through clone3) must go before its TLS is unmapped.
  const auto host_rseq = abi::HostRseq();
  a->host_rseq = host_rseq.addr;
  a->host_rseq_len = host_rseq.len;
  a->host_rseq_sig = host_rseq.sig;

  for (int i = 0; i < 4; i++) {
    a->uids[i] = p.creds.uids[i];
    a->gids[i] = p.creds.gids[i];
  }
  a->group_count = static_cast<uint32_t>(p.creds.groups.size());
  auto* groups = ArenaArray<uint32_t>(a, a->groups_offset, cursor, p.creds.groups.size());
  std::copy(p.creds.groups.begin(), p.creds.groups.end(), groups);
  a->cap_inh = p.creds.cap_inh;
  a->cap_prm = p.creds.cap_prm;
  a->cap_eff = p.creds.cap_eff;
  a->cap_bnd = p.creds.cap_bnd;
  a->cap_amb = p.creds.cap_amb;
  auto last_cap = ReadWholeFile("/proc/sys/kernel/cap_last_cap");
  a->cap_last = last_cap ? static_cast<uint32_t>(std::atoi(last_cap->c_str())) : 40;
  std::strncpy(a->comm, p.comm.c_str(), sizeof a->comm - 1);

  a->close_fd_count = static_cast<uint32_t>(close_fds.size());
  auto* cf = ArenaArray<int32_t>(a, a->close_fds_offset, cursor, close_fds.size());
  std::copy(close_fds.begin(), close_fds.end(), cf);
  FillThreads(p, plan, a, cursor);
  a->arena_size = static_cast<uint32_t>(cursor);
  if (cursor > plan.arena_size) return MakeError(ErrorKind::kInternal, "arena overflow");
  return {};
}

Status InstallBlob(const Plan& plan) {
  auto blob = abi::BlobImage();
  void* at = reinterpret_cast<void*>(plan.blob_addr);
  if (::mprotect(at, plan.blob_size, PROT_READ | PROT_WRITE) < 0) return ErrnoError("map blob");
  std::memcpy(at, blob.data(), blob.size());
  if (::mprotect(at, plan.blob_size, PROT_READ | PROT_EXEC) < 0) return ErrnoError("protect blob");
  return {};
}

// The process's memory in its premap area. A child created after its parent filled its memory
// takes its inherited pages from the parent's area, then lets go of the rest of it.
Status BuildMemory(const ChildContext& ctx) {
  const model::Process& p = *ctx.process;
  const Plan& plan = *ctx.plan;
  UniqueFd pages(::openat(ctx.dir_fd, p.pages_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pages.valid()) return ErrnoError("open {}", p.pages_file);
  CRYO_TRYV(ReserveKeepRegion(plan));
  const auto* lazy = ctx.tree->lazy_vmas.empty() ? nullptr : &ctx.tree->lazy_vmas[ctx.index];
  CRYO_TRYV(
      PremapAndFill(p, plan, pages.get(), ctx.chain, ctx.shmem, lazy, ctx.tree->lazy_parent_pages));
  const Plan* parent = ctx.index == 0 ? nullptr : &ctx.tree->plans[ctx.tree->parents[ctx.index]];
  if (parent != nullptr && !parent->cow_slots.empty() &&
      ::munmap(reinterpret_cast<void*>(parent->keep_start), parent->keep_end - parent->keep_start) <
          0) {
    return ErrnoError("unmap the parent's premap area");
  }
  return {};
}

// Lazy restore: the vmas holding lazy pages go to the daemon (restore/lazy.h), at their final
// addresses, with a userfaultfd that the blob registers them with once it has moved them there.
// Returns that userfaultfd and the connection of the daemon's answer (both invalid without lazy
// vmas).
Result<LazyHandOver> HandOverLazyAreas(const ChildContext& ctx) {
  std::vector<LazyArea> areas;
  for (size_t i = 0; i < ctx.plan->premap.size(); i++) {
    const model::Vma& v = ctx.process->vmas[ctx.plan->premap[i].vma_index];
    if (LazySlot(ctx, i)) areas.push_back({v.start, v.start, v.length()});
  }
  if (areas.empty()) return LazyHandOver{};
  return HandOverToDaemon(ctx.tree->lazy_socket, ctx.process->pid, areas,
                          ctx.tree->lazy_parent_pages ? kLazyParentPages : 0);
}

// Around the creation of the children of a process that fills its memory first: only the slots
// they inherit from go to them (the others would cost page-table copies for nothing).
Status ForkOnlyCowSlots(const Plan& plan, bool before) {
  for (size_t i = 0; i < plan.premap.size(); i++) {
    if (std::find(plan.cow_slots.begin(), plan.cow_slots.end(), i) != plan.cow_slots.end()) {
      continue;
    }
    uint64_t start = plan.premap[i].addr;
    uint64_t end = i + 1 < plan.premap.size() ? plan.premap[i + 1].addr : plan.keep_end;
    if (::madvise(reinterpret_cast<void*>(start), end - start,
                  before ? MADV_DONTFORK : MADV_DOFORK) < 0) {
      return ErrnoError("madvise premap slot {:#x}", start);
    }
  }
  return {};
}

Status ChildSteps(const ChildContext& ctx, int& error_fd) {
  const model::Process& p = *ctx.process;
  const Plan& plan = *ctx.plan;
  bool fill_first = !plan.cow_slots.empty();
  auto before_children = [&]() -> Status {
    if (!fill_first) return {};
    CRYO_TRYV(BuildMemory(ctx));
    return ForkOnlyCowSlots(plan, true);
  };
  CRYO_TRYV(TreeChildCreate(*ctx.tree, ctx.index, before_children));
  if (fill_first) {
    CRYO_TRYV(ForkOnlyCowSlots(plan, false));
  } else {
    CRYO_TRYV(BuildMemory(ctx));
  }
  // Only now, with the children created (the blob registers the areas later still).
  // The daemon takes the areas in while this process installs its files; its answer is read
  // before the blob.
  LazyHandOver lazy = CRYO_TRY(HandOverLazyAreas(ctx));
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &nofile);
  }

  UniqueFd exe(::open(p.mm.exe_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!exe.valid()) return ErrnoError("open executable {}", p.mm.exe_path);

  int floor = 3;
  for (const auto& f : p.fds) floor = std::max(floor, f.fd + 1);
  error_fd = CRYO_TRY(MoveAbove(error_fd, floor));
  int exe_fd = CRYO_TRY(MoveAbove(exe.Release(), floor));
  std::set<int> keep = {error_fd, exe_fd};
  std::vector<int> close_last = {error_fd};
  int uffd_fd = -1;
  int lazy_sock = -1;
  if (lazy.uffd.valid()) {
    uffd_fd = CRYO_TRY(MoveAbove(lazy.uffd.Release(), floor));
    keep.insert(uffd_fd);
    close_last.push_back(uffd_fd);
    lazy_sock = CRYO_TRY(MoveAbove(lazy.sock.Release(), floor));
    keep.insert(lazy_sock);
  }
  auto shmem_fds = CRYO_TRY(ChildShmemFds::Take(ctx.shmem, floor));
  for (int fd : shmem_fds.Fds()) keep.insert(fd);
  for (const auto& f : p.fds) {
    if (f.type == model::FdType::kInherited) keep.insert(f.fd);
  }
  for (const auto& [id, fd] : ctx.tree->shared_fds) keep.insert(fd);
  CRYO_TRYV(CloseStrayFds(keep));
  CRYO_TRYV(InstallFds(p, floor, shmem_fds, ctx.tree->shared_fds));

  CRYO_TRYV(RestoreFsContext(p));
  CRYO_TRYV(RestoreExecutionDomain(p));
  CRYO_TRYV(RestoreSigactions(p));
  CRYO_TRYV(QueuePendingSignals(p));
  CRYO_TRYV(BuildArena(ctx, exe_fd, uffd_fd, close_last));
  if (lazy_sock >= 0) {
    UniqueFd sock(lazy_sock);
    CRYO_TRYV(AwaitHandOver(sock.get(), p.pid));
  }
  CRYO_TRYV(InstallBlob(plan));
  return TreeChildReady(*ctx.tree, ctx.index);
}

}  // namespace

Result<std::map<uint32_t, int>> OpenSharedFiles(const model::ProcessTree& tree, int base,
                                                std::vector<UniqueFd>& held) {
  std::vector<model::Fd> reps;  // the first fd of each shared file, in tree order
  std::set<uint32_t> seen;
  for (const model::Process& p : tree.processes) {
    for (const model::Fd& f : p.fds) {
      if (f.shared_file != 0 && seen.insert(f.shared_file).second) reps.push_back(f);
    }
  }
  SharedObjects shared{PipeSet(reps, base), SocketPairSet(reps, base), nullptr, PtySet(reps, base)};
  std::map<uint32_t, int> out;
  for (const model::Fd& f : reps) {
    UniqueFd fd = CRYO_TRY_CTX(OpenFdObject(f, shared), "shared file {}", f.shared_file);
    int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, base);
    if (moved < 0) return ErrnoError("move shared file {} above fd {}", f.shared_file, base);
    held.emplace_back(moved);
    out[f.shared_file] = moved;
  }
  return out;
}

void RunTreeChild(const TreeRestore& tr, size_t index) {
  ChildContext ctx{&tr.tree->processes[index], &tr.plans[index], tr.dir_fd, tr.error_fd,
                   tr.chains[index],           tr.shmem,         &tr,       index};
  RunChild(ctx);
}

void RunChild(const ChildContext& ctx) {
  int error_fd = ctx.error_fd;
  auto s = ChildSteps(ctx, error_fd);
  if (!s) {
    std::string msg =
        fmt::format("restore pid {}: {}\n", ctx.process->pid, s.error().Message()).substr(0, 4000);
    (void)!::write(error_fd, msg.data(), msg.size());
    ::_exit(1);
  }
  abi::JumpToBlob(ctx.plan->blob_addr, ctx.plan->arena_addr, ctx.plan->stack_top);
}

}  // namespace cryo::restore
