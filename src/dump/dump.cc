#include "dump/dump.h"

#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <span>

#include "base/log.h"
#include "base/stopwatch.h"
#include "dump/capture_fds.h"
#include "dump/capture_mm.h"
#include "dump/capture_seccomp.h"
#include "dump/capture_shmem.h"
#include "dump/capture_task.h"
#include "dump/capture_thread.h"
#include "dump/dump_memory.h"
#include "dump/fd_inet.h"
#include "dump/fd_kinds.h"
#include "dump/fd_tty.h"
#include "dump/page_server.h"
#include "dump/shape.h"
#include "dump/stats.h"
#include "dump/tracking.h"
#include "dump/tree.h"
#include "dump/tree_fds.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/tree_io.h"
#include "mem/page_wire.h"
#include "proc/stat.h"
#include "proc/status.h"
#include "proc/tasks.h"
#include "ptrace/freezer.h"

namespace cryo::dump {
namespace {

using Clock = SteadyClock;

Result<model::Process> CaptureProcess(const ptrace::Freezer& frozen, const MmCaptureOptions& mm,
                                      int tracker_fd, std::vector<UffdOwner>& owners,
                                      InetSession& inet, bool in_tree) {
  const ptrace::Tracee& leader = frozen.threads().at(0);
  model::Process p;
  p.pid = frozen.pid();
  CRYO_TRYV(CaptureSeccomp(frozen, p));
  // Unsupported files are the most common refusal: find them before any other work.
  p.fds = CRYO_TRY(CaptureFds(p.pid, tracker_fd, mm.shmem, &inet, in_tree));
  for (const ptrace::Tracee& t : frozen.threads()) {
    p.threads.push_back(CRYO_TRY_CTX(CaptureThread(p.pid, t), "pid {}", p.pid));
  }
  CRYO_TRYV(CaptureViaRemoteSyscalls(frozen, p));
  CRYO_TRYV(CaptureProcessAttributes(leader, p));
  CRYO_TRYV(CaptureMm(p.pid, p, mm, &owners));
  CRYO_TRYV(CheckProcessUffd(p));  // dump/fd_userfaultfd.cc
  return p;
}

// Shared memory is copied whole in every dump, incremental or not: no tracker covers it.
Result<model::ShmemTable> CopySharedMemory(const image::ImageDir& dir, ShmemCollector& shmem,
                                           DumpStats& stats) {
  auto t0 = Clock::now();
  model::ShmemTable table = CRYO_TRY(shmem.CopyContent(dir.fd()));
  stats.shmem_copy_seconds = SecondsSince(t0);
  stats.shmem_objects = table.objects.size();
  for (const auto& o : table.objects) {
    for (const auto& r : o.runs) stats.shmem_bytes += r.nr_pages * 4096;
  }
  return table;
}

Status WriteImages(const image::ImageDir& dir, const DumpOptions& opts, model::ProcessTree tree,
                   const std::vector<TrackingState>& next) {
  image::Inventory inv = MakeInventory(tree.root_pid);
  inv.parent_dir = opts.prev_images_dir;
  CRYO_TRYV(image::WriteInventory(dir, inv));
  CRYO_TRYV(image::WriteTree(dir, tree));
  if (opts.track_mem) CRYO_TRYV(WriteTrackingStates(dir.path(), next));
  return {};
}

// The tracker of one tree member in this dump, kept until the members run again.
struct MemberTracker {
  std::optional<mem::UffdTracker> tracker;
  TrackingState next;
};

void UntrackAll(mem::UffdTracker& tracker, const TrackingState& next) {
  for (const auto& r : next.ranges) {
    if (auto u = tracker.Untrack(r.start, r.end); !u) {
      log::Warn("pid {}: unregister {:#x}-{:#x}: {}", next.pid, r.start, r.end,
                u.error().Message());
    }
  }
}

// The incremental part of one tree member's dump, after its capture: `parent` is its state in
// the parent round (null: no parent pages, all of it is copied). Fills mt.next's ranges and hot.
Result<MemoryPlan> PlanMemberRound(const DumpOptions& opts, const ptrace::Tracee& leader,
                                   model::Process& p, std::span<const UffdOwner> owners,
                                   const TrackingState* parent, MemberTracker& mt, MemoryStats& mem,
                                   const model::Process* tree_parent) {
  std::optional<RemoteFdCloser> remove_tracker;
  if (mt.tracker && !opts.track_mem) remove_tracker.emplace(leader, mt.next.fd);
  TrackingRound round;
  round.tracker = mt.tracker ? &*mt.tracker : nullptr;
  round.has_parent = parent != nullptr;
  round.track_new = opts.track_mem;
  mt.next.round = (parent ? parent->round : 0) + 1;
  if (parent != nullptr) round.hot = parent->hot;
  round.cool = mt.next.round % kCoolEvery == 0;
  if (parent != nullptr) {
    round.parent_coverage =
        CRYO_TRY(ReadParentCoverage(opts.images_dir, *opts.prev_images_dir, p.pid));
    if (opts.track_mem) mt.next.fd = CRYO_TRY(MoveRemoteFd(leader, mt.next.fd));
  }
  auto plan = CRYO_TRY(PlanMemory(p, owners, &round, mem, tree_parent));
  plan.compress = opts.compress;
  if (remove_tracker) CRYO_TRYV(remove_tracker->Close());
  mt.next.ranges = std::move(round.tracked);
  mt.next.hot = std::move(round.hot_out);
  return plan;
}

// Every member of the tree (a single process is a tree of one): captured, its memory copied, shared
// files linked across processes, then the images written. Each live member has its own tracker, as
// a single process does (see Dump): `parents` are the states of the parent round (a member without
// one is copied whole), `trackers` gets one per live member.
// `inet` gets one session per member; they must outlive the release of the tree (see Dump).
Status DumpTree(const image::ImageDir& dir, const DumpOptions& opts, FrozenTree& frozen,
                const std::vector<TrackingState>& parents,
                std::vector<std::unique_ptr<MemberTracker>>& trackers,
                std::vector<std::unique_ptr<InetSession>>& inet, DumpStats& stats,
                std::map<pid_t, std::vector<mem::PageRange>>& lazy) {
  CRYO_TRYV(frozen.CheckSessionsAndGroups());
  // A lone process refuses a pipe or socket whose other end left it; in a tree such an end is
  // looked for in the other members (dump/tree_fds.h).
  bool in_tree = frozen.members().size() > 1;
  model::ProcessTree tree;
  tree.root_pid = frozen.members()[0].pid;
  MemoryStats mem;
  ShmemCollector shmem;
  // Trackers made in this dump: closed in their processes again unless the dump succeeds.
  std::vector<std::unique_ptr<RemoteFdCloser>> fresh_guards;
  std::vector<TrackingState> next;
  for (TreeMember& m : frozen.members()) {
    if (m.zombie) {
      tree.processes.push_back(ZombieProcess(m));
      continue;
    }
    const ptrace::Tracee& leader = m.frozen->threads().at(0);
    const TrackingState* parent = FindTracking(parents, m.pid);
    trackers.push_back(std::make_unique<MemberTracker>());
    MemberTracker& mt = *trackers.back();
    mt.next.pid = m.pid;
    mt.next.start_time = CRYO_TRY(ProcessStartTime(m.pid));
    if (parent != nullptr) {
      mt.next.fd = parent->fd;
      auto uffd = CRYO_TRY(TakeRemoteUffd(m.pid, parent->fd));
      mt.tracker.emplace(CRYO_TRY(mem::UffdTracker::Adopt(std::move(uffd), false)));
    } else {
      CRYO_TRYV(RemoveStaleTrackers(leader));
      if (opts.track_mem) {
        auto uffd = CRYO_TRY(CreateRemoteUffd(leader, &mt.next.fd));
        fresh_guards.push_back(std::make_unique<RemoteFdCloser>(leader, mt.next.fd));
        mt.tracker.emplace(CRYO_TRY(mem::UffdTracker::Adopt(std::move(uffd), true)));
      }
    }
    std::vector<UffdOwner> owners;
    inet.push_back(std::make_unique<InetSession>(m.pid, opts.tcp_established));
    std::vector<mem::PageRange> tracked;  // MmCaptureOptions holds a span of it
    if (parent != nullptr) tracked = parent->ranges;
    auto t_capture = Clock::now();
    model::Process p = CRYO_TRY(CaptureProcess(
        *m.frozen,
        MmCaptureOptions{.tracked = tracked, .allow_process_uffd = true, .shmem = &shmem},
        mt.next.fd, owners, *inet.back(), in_tree));
    stats.capture_seconds += SecondsSince(t_capture);
    p.stopped = m.stopped;
    p.ppid = m.ppid;
    CRYO_TRYV(CheckTerminalFds(p, opts.shell_job));  // dump/fd_tty.h
    // Its parent, if a live member already captured (members come parents first): the pages
    // they still share copy-on-write are stored once, in the parent's image.
    // (Not with post-copy: a parent's lazy pages are not in place when its children are made.)
    const model::Process* tree_parent = nullptr;
    for (const model::Process& q : tree.processes) {
      if (q.pid == p.ppid && !q.zombie && !opts.lazy_pages) tree_parent = &q;
    }
    auto plan = CRYO_TRY_CTX(PlanMemberRound(opts, leader, p, owners, parent, mt, mem, tree_parent),
                             "pid {}", m.pid);
    if (opts.lazy_pages) {
      auto left = LeaveLazy(p, plan);
      uint64_t pages = 0;
      for (const auto& r : left) pages += r.pages();
      mem.pages_lazy += pages;
      mem.pages_written -= pages;
      if (!left.empty()) lazy[p.pid] = std::move(left);
    }
    CRYO_TRYV(CopyMemory(dir.fd(), p, plan, mem));
    if (mt.tracker) next.push_back(mt.next);
    tree.processes.push_back(std::move(p));
  }
  CRYO_TRYV(LinkSharedFiles(tree));
  AddMemoryStats(stats, mem);
  tree.shmem = CRYO_TRY(CopySharedMemory(dir, shmem, stats));
  auto t_write = Clock::now();
  CRYO_TRYV(WriteImages(dir, opts, std::move(tree), next));
  for (auto& g : fresh_guards) g->Keep();
  stats.write_seconds = SecondsSince(t_write);
  return {};
}

// Post-copy: with the image written, serves the frozen tree's lazy pages until the lazy-pages
// daemon has them all, then kills the tree. If the daemon never asked for a page (it could not
// connect, or failed before restoring anything), the tree is resumed instead: nothing runs
// elsewhere yet. Once a page went out, the restored copy depends on this one: killed either way.
Result<DumpStats> ServeAndEnd(const DumpOptions& opts, const image::ImageDir& dir, int listener,
                              FrozenTree& tree, std::vector<std::unique_ptr<InetSession>>& inet,
                              const std::map<pid_t, std::vector<mem::PageRange>>& lazy,
                              DumpStats& stats, Clock::time_point t_start,
                              Clock::time_point t_frozen) {
  stats.frozen_seconds = SecondsSince(t_frozen);  // until the image is complete
  stats.total_seconds = SecondsSince(t_start);
  CRYO_TRYV(WriteStats(dir, stats));
  ServeStats served;
  Status s;
  if (opts.lazy_conn >= 0) {
    s = opts.on_image ? opts.on_image(stats) : Status{};
    if (s) s = ServeLazyPagesOn(opts.lazy_conn, lazy, served);
  } else {
    log::Info("pid {}: {} pages left lazy; serving them on {} port {}", opts.pid, stats.pages_lazy,
              opts.address, opts.port);
    s = ServeLazyPages(listener, lazy, served);
  }
  if (!s) {
    if (served.requests == 0) {
      for (auto& i : inet) (void)i->Resumed();
      (void)tree.Release();
      return Wrapped(std::move(s).error(),
                     fmt::format("post-copy failed before any page was sent; pid {} was resumed "
                                 "here",
                                 opts.pid));
    }
    (void)tree.Kill();
    for (auto& i : inet) i->Killed();
    return Wrapped(std::move(s).error(),
                   fmt::format("post-copy failed after {} pages were sent; pid {} was killed "
                               "here (its restored copy cannot get the rest)",
                               served.bytes / 4096, opts.pid));
  }
  CRYO_TRYV(tree.Kill());
  for (auto& i : inet) i->Killed();
  return stats;
}

}  // namespace

Result<DumpStats> Dump(const DumpOptions& opts) {
  auto t_start = Clock::now();
  DumpStats stats;
  pid_t pid = opts.pid;
  if (opts.track_mem && !opts.leave_running) {
    return MakeError(ErrorKind::kInvalidArg, "--track-mem needs --leave-running");
  }
  proc::ProcStatus shape = CRYO_TRY(CheckSupportedShape(pid, /*allow_children=*/true));
  auto dir = CRYO_TRY(image::ImageDir::Create(opts.images_dir));
  std::vector<TrackingState> parents;
  if (opts.prev_images_dir) {
    parents = CRYO_TRY(ReadParentTrackingTree(opts.images_dir, *opts.prev_images_dir, pid));
  }

  std::optional<UniqueFd> listener;
  if (opts.lazy_pages) {
    if (opts.leave_running || opts.track_mem) {
      return MakeError(ErrorKind::kInvalidArg,
                       "--lazy-pages serves the memory of the frozen process: not with "
                       "--leave-running or --track-mem");
    }
    if (opts.lazy_conn < 0) {
      if (opts.port == 0) return MakeError(ErrorKind::kInvalidArg, "--lazy-pages needs --port");
      listener.emplace(CRYO_TRY(mem::WireListen(opts.address, opts.port)));  // before freezing
    }
  }
  bool stopped = shape.state == 'T';
  FrozenTree tree = CRYO_TRY(FrozenTree::Freeze(pid, stopped));
  auto t_frozen = Clock::now();
  // Destroyed before `tree` resumes the processes: a failed dump takes their sockets out of
  // repair mode and removes the network lock first.
  std::vector<std::unique_ptr<InetSession>> inet;
  std::vector<std::unique_ptr<MemberTracker>> trackers;
  std::map<pid_t, std::vector<mem::PageRange>> lazy;
  CRYO_TRYV(DumpTree(dir, opts, tree, parents, trackers, inet, stats, lazy));
  if (opts.lazy_pages)
    return ServeAndEnd(opts, dir, listener ? listener->get() : -1, tree, inet, lazy, stats, t_start,
                       t_frozen);
  // Frozen time ends when the processes run again or are killed; waiting for a killed process to
  // release its memory (tens of ms per GiB) is not time it spends frozen.
  stats.frozen_seconds = SecondsSince(t_frozen);
  if (!opts.leave_running) {
    // Killed, a process takes its sockets (still in repair mode) down silently; the network lock
    // stays until restore.
    CRYO_TRYV(tree.Kill());
    for (auto& s : inet) s->Killed();
  } else {
    // Left running, a process must not see its sockets in repair mode. Without --track-mem it is
    // left as if never tracked: protection cleared and ranges unregistered while it runs
    // (nothing waits on an async write-protect), as the kernel would when our last uffd
    // reference goes.
    for (auto& s : inet) CRYO_TRYV(s->Resumed());
    CRYO_TRYV(tree.Release());
    if (!opts.track_mem) {
      for (auto& mt : trackers) {
        if (mt->tracker) UntrackAll(*mt->tracker, mt->next);
      }
    }
  }
  stats.total_seconds = SecondsSince(t_start);
  CRYO_TRYV(WriteStats(dir, stats));
  return stats;
}

}  // namespace cryo::dump
