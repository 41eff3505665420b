#include "dump/pre_dump.h"

#include <chrono>

#include "base/log.h"
#include "base/stopwatch.h"
#include "dump/capture_mm.h"
#include "dump/capture_seccomp.h"
#include "dump/dump_memory.h"
#include "dump/shape.h"
#include "dump/stats.h"
#include "dump/tracking.h"
#include "image/codec.h"
#include "image/format.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "ptrace/freezer.h"

namespace cryo::dump {
namespace {

using Clock = SteadyClock;

Status WriteMemoryImage(const image::ImageDir& dir, const model::Process& p,
                        const std::optional<std::string>& parent) {
  image::Inventory inv = MakeInventory(p.pid);
  inv.parent_dir = parent;
  CRYO_TRYV(image::WriteInventory(dir, inv));
  std::string pagemap = CRYO_TRY(image::EncodePagemap(p));
  return image::WriteImageFile(dir, image::PagemapFileName(p.pid), pagemap);
}

}  // namespace

Result<DumpStats> PreDump(const PreDumpOptions& opts) {
  auto t_start = Clock::now();
  DumpStats stats;
  pid_t pid = opts.pid;
  CRYO_TRYV(CheckSupportedShape(pid));
  auto dir = CRYO_TRY(image::ImageDir::Create(opts.images_dir));
  TrackingState parent;
  if (opts.prev_images_dir) {
    parent = CRYO_TRY(ReadParentTracking(opts.images_dir, *opts.prev_images_dir, pid));
  }

  auto frozen = CRYO_TRY(ptrace::Freezer::FreezeProcess(pid));
  auto t_frozen = Clock::now();
  CRYO_TRYV(CheckSupportedShape(pid));
  CRYO_TRYV(SuspendSeccomp(frozen));  // before any remote syscall
  const ptrace::Tracee& leader = frozen.threads().at(0);

  TrackingState next;
  next.pid = pid;
  next.start_time = CRYO_TRY(ProcessStartTime(pid));
  std::optional<RemoteFdCloser> guard;  // a tracker made in this round
  UniqueFd uffd;
  if (opts.prev_images_dir) {
    next.fd = parent.fd;
    uffd = CRYO_TRY(TakeRemoteUffd(pid, parent.fd));
  } else {
    CRYO_TRYV(RemoveStaleTrackers(leader));
    uffd = CRYO_TRY(CreateRemoteUffd(leader, &next.fd));
    guard.emplace(leader, next.fd);
  }
  auto tracker = CRYO_TRY(mem::UffdTracker::Adopt(std::move(uffd), !opts.prev_images_dir));

  model::Process p;
  p.pid = pid;
  std::vector<UffdOwner> owners;
  MmCaptureOptions mm_opts{.tracked = parent.ranges, .allow_process_uffd = true};
  CRYO_TRYV(CaptureMm(pid, p, mm_opts, &owners));
  stats.capture_seconds = SecondsSince(t_frozen);

  TrackingRound round;
  round.tracker = &tracker;
  round.has_parent = opts.prev_images_dir.has_value();
  next.round = parent.round + 1;
  round.hot = parent.hot;
  round.cool = next.round % kCoolEvery == 0;
  MemoryStats mem;
  if (opts.prev_images_dir) {
    round.parent_coverage =
        CRYO_TRY(ReadParentCoverage(opts.images_dir, *opts.prev_images_dir, pid));
  }
  if (opts.prev_images_dir) next.fd = CRYO_TRY(MoveRemoteFd(leader, next.fd));
  auto plan = CRYO_TRY(PlanMemory(p, owners, &round, mem));
  plan.compress = opts.compress;
  next.ranges = std::move(round.tracked);
  next.hot = std::move(round.hot_out);
  if (guard) guard->Keep();
  stats.frozen_seconds = SecondsSince(t_frozen);
  CRYO_TRYV(frozen.Release());
  log::Info("pid {} resumed after {:.3f} s; copying {} pages while it runs", pid,
            stats.frozen_seconds, mem.pages_written);

  CRYO_TRYV(CopyMemory(dir.fd(), p, plan, mem, /*running=*/true));
  // A process that died during the copy leaves zeros where its pages were: not an image.
  auto still = ProcessStartTime(pid);
  if (!still || *still != next.start_time) {
    return MakeError(ErrorKind::kInvalidArg, "pid {} exited during the pre-dump", pid);
  }
  if (mem.pages_gone > 0) {
    log::Info("pid {} dropped {} pages during the copy; the next round stores them if they return",
              pid, mem.pages_gone);
  }
  auto t_write = Clock::now();
  CRYO_TRYV(WriteMemoryImage(dir, p, opts.prev_images_dir));
  CRYO_TRYV(WriteTrackingState(dir.path(), next));
  stats.write_seconds = SecondsSince(t_write);
  AddMemoryStats(stats, mem);
  stats.total_seconds = SecondsSince(t_start);
  CRYO_TRYV(WriteStats(dir, stats));
  return stats;
}

}  // namespace cryo::dump
