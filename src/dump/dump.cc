#include "dump/dump.h"

#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

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
#include "dump/shape.h"
#include "dump/stats.h"
#include "dump/tracking.h"
#include "dump/tree.h"
#include "dump/tree_fds.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/tree_io.h"
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

// The tracker of this dump: the parent round's (taken back from the process), a new one
// (--track-mem without a parent: closed in the process again unless the dump succeeds), or none.
// Fills next.fd and next.start_time.
Result<std::optional<mem::UffdTracker>> AttachTracker(const DumpOptions& opts,
                                                      const ptrace::Tracee& leader,
                                                      TrackingState& next,
                                                      std::optional<RemoteFdCloser>& fresh_guard) {
  next.start_time = CRYO_TRY(ProcessStartTime(next.pid));
  if (opts.prev_images_dir) {
    auto uffd = CRYO_TRY(TakeRemoteUffd(next.pid, next.fd));
    return CRYO_TRY(mem::UffdTracker::Adopt(std::move(uffd), false));
  }
  CRYO_TRYV(RemoveStaleTrackers(leader));
  if (!opts.track_mem) return std::nullopt;
  auto uffd = CRYO_TRY(CreateRemoteUffd(leader, &next.fd));
  fresh_guard.emplace(leader, next.fd);
  return CRYO_TRY(mem::UffdTracker::Adopt(std::move(uffd), true));
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
                   const TrackingState& next) {
  image::Inventory inv = MakeInventory(tree.root_pid);
  inv.parent_dir = opts.prev_images_dir;
  CRYO_TRYV(image::WriteInventory(dir, inv));
  CRYO_TRYV(image::WriteTree(dir, tree));
  if (opts.track_mem) CRYO_TRYV(WriteTrackingState(dir.path(), next));
  return {};
}

// Kills the process, or lets it run on. Left running without --track-mem, it is left as if never
// tracked: protection cleared and ranges unregistered, while it runs (nothing waits on an async
// write-protect; 1 GiB takes tens of ms), as the kernel would when our last uffd reference goes.
Status ReleaseTarget(FrozenTree& frozen, const DumpOptions& opts, mem::UffdTracker* tracker,
                     const TrackingState& next) {
  if (!opts.leave_running) return frozen.Kill();
  if (tracker == nullptr) return frozen.Release();
  CRYO_TRYV(frozen.Release());
  if (opts.track_mem) return {};
  for (const auto& r : next.ranges) {
    if (auto u = tracker->Untrack(r.start, r.end); !u) {
      log::Warn("pid {}: unregister {:#x}-{:#x}: {}", next.pid, r.start, r.end,
                u.error().Message());
    }
  }
  return {};
}

// Every member of a tree of more than one process: captured, its memory copied, shared files
// linked across processes, then the images written. No dirty tracking.
// `inet` gets one session per member; they must outlive the release of the tree (see Dump).
Status DumpTree(const image::ImageDir& dir, const DumpOptions& opts, FrozenTree& frozen,
                std::vector<std::unique_ptr<InetSession>>& inet, DumpStats& stats) {
  auto t0 = Clock::now();
  CRYO_TRYV(frozen.CheckSessionsAndGroups());
  model::ProcessTree tree;
  tree.root_pid = frozen.members()[0].pid;
  MemoryStats mem;
  ShmemCollector shmem;
  for (TreeMember& m : frozen.members()) {
    if (m.zombie) {
      tree.processes.push_back(ZombieProcess(m));
      continue;
    }
    const ptrace::Tracee& leader = m.frozen->threads().at(0);
    CRYO_TRYV(RemoveStaleTrackers(leader));
    std::vector<UffdOwner> owners;
    inet.push_back(std::make_unique<InetSession>(m.pid, opts.tcp_established));
    model::Process p = CRYO_TRY(CaptureProcess(
        *m.frozen, MmCaptureOptions{.tracked = {}, .allow_process_uffd = true, .shmem = &shmem}, -1,
        owners, *inet.back(), true));
    p.stopped = m.stopped;
    p.ppid = m.ppid;
    CRYO_TRYV(CheckTerminalFds(p, opts.shell_job));  // dump/fd_tty.h
    auto plan = CRYO_TRY(PlanMemory(p, owners, nullptr, mem));
    plan.compress = opts.compress;
    CRYO_TRYV(CopyMemory(dir.fd(), p, plan, mem));
    tree.processes.push_back(std::move(p));
  }
  CRYO_TRYV(LinkSharedFiles(tree));
  stats.capture_seconds = SecondsSince(t0);
  AddMemoryStats(stats, mem);
  tree.shmem = CRYO_TRY(CopySharedMemory(dir, shmem, stats));
  auto t_write = Clock::now();
  CRYO_TRYV(WriteImages(dir, opts, std::move(tree), TrackingState{}));
  stats.write_seconds = SecondsSince(t_write);
  return {};
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
  TrackingState parent;
  if (opts.prev_images_dir) {
    parent = CRYO_TRY(ReadParentTracking(opts.images_dir, *opts.prev_images_dir, pid));
  }

  bool stopped = shape.state == 'T';
  FrozenTree tree = CRYO_TRY(FrozenTree::Freeze(pid, stopped));
  auto t_frozen = Clock::now();
  if (tree.members().size() > 1) {
    if (opts.prev_images_dir || opts.track_mem) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {} has child processes; incremental dumps of process trees are not "
                       "supported yet",
                       pid);
    }
    // Destroyed before `tree` resumes the processes: a failed dump takes their sockets out of
    // repair mode and removes the network lock first.
    std::vector<std::unique_ptr<InetSession>> inet;
    CRYO_TRYV(DumpTree(dir, opts, tree, inet, stats));
    stats.frozen_seconds = SecondsSince(t_frozen);
    if (opts.leave_running) {
      for (auto& s : inet) CRYO_TRYV(s->Resumed());
    }
    CRYO_TRYV(ReleaseTarget(tree, opts, nullptr, TrackingState{}));
    if (!opts.leave_running) {
      for (auto& s : inet) s->Killed();
    }
    stats.total_seconds = SecondsSince(t_start);
    CRYO_TRYV(WriteStats(dir, stats));
    return stats;
  }
  const ptrace::Freezer& frozen = *tree.members()[0].frozen;

  // The tracker is ours, not the process's: its fd is not captured. A failure up to the capture
  // leaves it armed (the dump can be retried); from the scan on, which re-protects pages, it is
  // consumed and leaves the process whatever happens, unless --track-mem keeps it for a later
  // round.
  const ptrace::Tracee& leader = frozen.threads().at(0);
  TrackingState next{
      .pid = pid, .start_time = 0, .fd = parent.fd, .ranges = {}, .hot = {}, .round = 0};
  std::optional<RemoteFdCloser> fresh_guard;
  auto tracker = CRYO_TRY(AttachTracker(opts, leader, next, fresh_guard));
  std::vector<UffdOwner> owners;
  ShmemCollector shmem;
  // Destroyed before `tree` resumes the process: a failed dump takes its sockets out of repair
  // mode and removes the network lock first.
  InetSession inet(pid, opts.tcp_established);
  model::Process p = CRYO_TRY(CaptureProcess(
      frozen,
      MmCaptureOptions{.tracked = parent.ranges, .allow_process_uffd = true, .shmem = &shmem},
      next.fd, owners, inet, false));
  p.stopped = stopped;
  CRYO_TRYV(CheckTerminalFds(p, opts.shell_job));  // dump/fd_tty.h
  stats.capture_seconds = SecondsSince(t_frozen);
  std::optional<RemoteFdCloser> remove_tracker;
  if (tracker && !opts.track_mem) remove_tracker.emplace(leader, next.fd);

  MemoryStats mem;
  TrackingRound round;
  round.tracker = tracker ? &*tracker : nullptr;
  round.has_parent = opts.prev_images_dir.has_value();
  round.track_new = opts.track_mem;
  next.round = parent.round + 1;
  round.hot = parent.hot;
  round.cool = next.round % kCoolEvery == 0;
  if (opts.prev_images_dir) {
    round.parent_coverage =
        CRYO_TRY(ReadParentCoverage(opts.images_dir, *opts.prev_images_dir, pid));
  }
  if (opts.prev_images_dir && opts.track_mem) next.fd = CRYO_TRY(MoveRemoteFd(leader, next.fd));
  auto plan = CRYO_TRY(PlanMemory(p, owners, &round, mem));
  plan.compress = opts.compress;
  // The process's reference to the tracker goes now, while it is stopped; ours keeps it alive
  // until the ranges are unregistered after the resume (below).
  if (remove_tracker) CRYO_TRYV(remove_tracker->Close());
  next.ranges = std::move(round.tracked);
  next.hot = std::move(round.hot_out);
  CRYO_TRYV(CopyMemory(dir.fd(), p, plan, mem));
  AddMemoryStats(stats, mem);
  model::ShmemTable shmem_table = CRYO_TRY(CopySharedMemory(dir, shmem, stats));

  auto t_write = Clock::now();
  model::ProcessTree one;
  one.root_pid = p.pid;
  one.processes.push_back(std::move(p));
  one.shmem = std::move(shmem_table);
  CRYO_TRYV(WriteImages(dir, opts, std::move(one), next));
  if (fresh_guard) fresh_guard->Keep();
  stats.write_seconds = SecondsSince(t_write);

  // Frozen time ends when the process runs again or is killed; waiting for a killed process to
  // release its memory (tens of ms per GiB) is not time it spends frozen.
  stats.frozen_seconds = SecondsSince(t_frozen);
  // Left running, the process must not see its sockets in repair mode; killed, it takes them
  // down silently and the lock stays until restore.
  if (opts.leave_running) CRYO_TRYV(inet.Resumed());
  CRYO_TRYV(ReleaseTarget(tree, opts, tracker ? &*tracker : nullptr, next));
  if (!opts.leave_running) inet.Killed();
  stats.total_seconds = SecondsSince(t_start);
  CRYO_TRYV(WriteStats(dir, stats));
  return stats;
}

}  // namespace cryo::dump
