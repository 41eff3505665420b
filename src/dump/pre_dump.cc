#include "dump/pre_dump.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "base/log.h"
#include "base/stopwatch.h"
#include "dump/capture_mm.h"
#include "dump/capture_seccomp.h"
#include "dump/dump_memory.h"
#include "dump/shape.h"
#include "dump/stats.h"
#include "dump/tracking.h"
#include "dump/tree.h"
#include "image/codec.h"
#include "image/format.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "proc/tasks.h"
#include "ptrace/freezer.h"

namespace cryo::dump {
namespace {

using Clock = SteadyClock;

Status WriteInventory(const image::ImageDir& dir, pid_t root,
                      const std::optional<std::string>& parent) {
  image::Inventory inv = MakeInventory(root);
  inv.parent_dir = parent;
  return image::WriteInventory(dir, inv);
}

Status WritePagemap(const image::ImageDir& dir, const model::Process& p) {
  std::string pagemap = CRYO_TRY(image::EncodePagemap(p));
  return image::WriteImageFile(dir, image::PagemapFileName(p.pid), pagemap);
}

// One live member of the tree in this round.
struct Member {
  TrackingState next;
  std::optional<mem::UffdTracker> tracker;
  std::unique_ptr<RemoteFdCloser> guard;  // a tracker made in this round
  model::Process p;
  MemoryPlan plan;
  MemoryStats mem;  // its own: a member left out does not count
};

void Sum(MemoryStats& to, const MemoryStats& m) {
  to.pages_scanned += m.pages_scanned;
  to.pages_written += m.pages_written;
  to.pages_unchanged += m.pages_unchanged;
  to.pages_hot += m.pages_hot;
  to.pages_zero += m.pages_zero;
  to.bytes_written += m.bytes_written;
  to.bytes_content += m.bytes_content;
  to.codec = m.codec;
  to.pages_gone += m.pages_gone;
  to.scan_seconds += m.scan_seconds;
  to.copy_seconds += m.copy_seconds;
}

// Takes back (or makes) the tracker of the stopped member `frozen`, captures its memory layout
// and plans the round's copy. `parent` is its state in the parent round, null for a process that
// has none (the first round, or a child born since): all its pages are copied.
Status PlanMember(const ptrace::Freezer& frozen, const PreDumpOptions& opts,
                  const TrackingState* parent, Member& m) {
  pid_t pid = frozen.pid();
  CRYO_TRYV(SuspendSeccomp(frozen));  // before any remote syscall
  const ptrace::Tracee& leader = frozen.threads().at(0);
  m.next.pid = pid;
  m.next.start_time = CRYO_TRY(ProcessStartTime(pid));
  UniqueFd uffd;
  if (parent != nullptr) {
    m.next.fd = parent->fd;
    uffd = CRYO_TRY(TakeRemoteUffd(pid, parent->fd));
  } else {
    CRYO_TRYV(RemoveStaleTrackers(leader));
    uffd = CRYO_TRY(CreateRemoteUffd(leader, &m.next.fd));
    m.guard = std::make_unique<RemoteFdCloser>(leader, m.next.fd);
  }
  m.tracker.emplace(CRYO_TRY(mem::UffdTracker::Adopt(std::move(uffd), parent == nullptr)));

  m.p.pid = pid;
  std::vector<UffdOwner> owners;
  std::vector<mem::PageRange> tracked;
  if (parent != nullptr) tracked = parent->ranges;
  MmCaptureOptions mm_opts{.tracked = tracked, .allow_process_uffd = true};
  CRYO_TRYV(CaptureMm(pid, m.p, mm_opts, &owners));

  TrackingRound round;
  round.tracker = &*m.tracker;
  round.has_parent = parent != nullptr;
  m.next.round = (parent ? parent->round : 0) + 1;
  if (parent != nullptr) round.hot = parent->hot;
  round.cool = m.next.round % kCoolEvery == 0;
  if (parent != nullptr) {
    round.parent_coverage =
        CRYO_TRY(ReadParentCoverage(opts.images_dir, *opts.prev_images_dir, pid));
    m.next.fd = CRYO_TRY(MoveRemoteFd(leader, m.next.fd));
  }
  m.plan = CRYO_TRY(PlanMemory(m.p, owners, &round, m.mem));
  m.plan.compress = opts.compress;
  m.next.ranges = std::move(round.tracked);
  m.next.hot = std::move(round.hot_out);
  return {};
}

}  // namespace

// The root and every live descendant: each has its own tracker (a userfaultfd inside it) and its
// own pagemap in the image; tracking.json holds the state of each. Zombies have no memory.
Result<DumpStats> PreDump(const PreDumpOptions& opts) {
  auto t_start = Clock::now();
  DumpStats stats;
  pid_t pid = opts.pid;
  proc::ProcStatus shape = CRYO_TRY(CheckSupportedShape(pid, /*allow_children=*/true));
  auto dir = CRYO_TRY(image::ImageDir::Create(opts.images_dir));
  std::vector<TrackingState> parents;
  if (opts.prev_images_dir) {
    parents = CRYO_TRY(ReadParentTrackingTree(opts.images_dir, *opts.prev_images_dir, pid));
  }

  FrozenTree tree = CRYO_TRY(FrozenTree::Freeze(pid, shape.state == 'T'));
  auto t_frozen = Clock::now();
  MemoryStats planned;
  std::vector<std::unique_ptr<Member>> members;
  for (TreeMember& tm : tree.members()) {
    if (tm.zombie) continue;
    members.push_back(std::make_unique<Member>());
    const TrackingState* parent = FindTracking(parents, tm.pid);
    CRYO_TRYV_CTX(PlanMember(*tm.frozen, opts, parent, *members.back()), "pid {}", tm.pid);
    Sum(planned, members.back()->mem);
  }
  stats.capture_seconds = SecondsSince(t_frozen);
  for (auto& m : members) {
    if (m->guard) m->guard->Keep();
  }
  stats.frozen_seconds = SecondsSince(t_frozen);
  CRYO_TRYV(tree.Release());
  log::Info("pid {} resumed after {:.3f} s; copying {} pages while it runs", pid,
            stats.frozen_seconds, planned.pages_written);

  MemoryStats mem;
  std::vector<TrackingState> states;
  std::vector<const model::Process*> written;
  for (auto& m : members) {
    pid_t mp = m->p.pid;
    auto copied = CopyMemory(dir.fd(), m->p, m->plan, m->mem, /*running=*/true);
    // A process that died during the copy leaves zeros where its pages were (or no /proc/PID/mem
    // to read, once a zombie): not an image. The root's round fails; a child that exited is
    // left out (the next round treats it as gone).
    auto st = proc::ReadStat(mp);
    if (!st || st->start_time != m->next.start_time || st->state == 'Z' || st->state == 'X') {
      if (mp == pid) {
        return MakeError(ErrorKind::kInvalidArg, "pid {} exited during the pre-dump", pid);
      }
      log::Info("pid {} exited during the pre-dump; left out of the image", mp);
      ::unlinkat(dir.fd(), m->p.pages_file.c_str(), 0);
      continue;
    }
    CRYO_TRYV(copied);
    Sum(mem, m->mem);
    states.push_back(m->next);
    written.push_back(&m->p);
  }
  if (mem.pages_gone > 0) {
    log::Info("pid {} dropped {} pages during the copy; the next round stores them if they return",
              pid, mem.pages_gone);
  }
  auto t_write = Clock::now();
  CRYO_TRYV(WriteInventory(dir, pid, opts.prev_images_dir));
  for (const model::Process* p : written) CRYO_TRYV(WritePagemap(dir, *p));
  CRYO_TRYV(WriteTrackingStates(dir.path(), states));
  stats.write_seconds = SecondsSince(t_write);
  AddMemoryStats(stats, mem);
  stats.total_seconds = SecondsSince(t_start);
  CRYO_TRYV(WriteStats(dir, stats));
  return stats;
}

}  // namespace cryo::dump
