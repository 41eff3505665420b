#include "dump/dump.h"

#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "base/io.h"
#include "base/log.h"
#include "dump/capture_fds.h"
#include "dump/capture_mm.h"
#include "dump/capture_task.h"
#include "dump/capture_thread.h"
#include "dump/dump_memory.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/tree_io.h"
#include "proc/stat.h"
#include "proc/status.h"
#include "proc/tasks.h"
#include "ptrace/freezer.h"

namespace cryo::dump {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// What this version can checkpoint faithfully: one process (any number of threads) without
// children.
Status CheckSupportedShape(pid_t pid) {
  auto status_text = ReadWholeFile(fmt::format("/proc/{}/status", pid));
  if (!status_text) {
    if (status_text.error().sys_errno() == ENOENT) {
      return MakeError(ErrorKind::kInvalidArg, "no process with pid {}", pid);
    }
    return std::unexpected(status_text.error());
  }
  auto st = CRYO_TRY_CTX(proc::ParseStatus(*status_text), "status of pid {}", pid);
  if (st.tgid != pid) {
    return MakeError(ErrorKind::kInvalidArg, "{} is a thread of process {}; dump the process", pid,
                     st.tgid);
  }
  if (st.state == 'Z' || st.state == 'X') {
    return MakeError(ErrorKind::kInvalidArg, "pid {} is a zombie", pid);
  }
  if (st.tracer_pid != 0 && st.tracer_pid != ::getpid()) {
    return MakeError(ErrorKind::kInvalidArg,
                     "pid {} is traced by pid {} (a debugger or tracer); detach it first", pid,
                     st.tracer_pid);
  }
  // Each thread lists the children it forked: look at all of them.
  auto tids = CRYO_TRY_CTX(proc::ListTasks(pid), "pid {}", pid);
  for (pid_t tid : tids) {
    auto children = ReadWholeFile(fmt::format("/proc/{}/task/{}/children", pid, tid));
    if (children && children->find_first_not_of(" \n") != std::string::npos) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {} has child processes ({}); process trees are not supported yet", pid,
                       children->substr(0, children->find_last_not_of(" \n") + 1));
    }
  }
  if (st.seccomp != 0) {
    return MakeError(ErrorKind::kUnsupported, "pid {} uses seccomp (mode {}); not supported yet",
                     pid, st.seccomp);
  }
  return {};
}

Result<bool> IsJobStopped(pid_t pid) {
  std::string text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/status", pid)));
  auto st = CRYO_TRY_CTX(proc::ParseStatus(text), "status of pid {}", pid);
  return st.state == 'T';
}

Result<model::Process> CaptureProcess(const ptrace::Freezer& frozen) {
  const ptrace::Tracee& leader = frozen.threads().at(0);
  model::Process p;
  p.pid = frozen.pid();
  // Unsupported files are the most common refusal: find them before any other work.
  p.fds = CRYO_TRY(CaptureFds(p.pid));
  for (const ptrace::Tracee& t : frozen.threads()) {
    p.threads.push_back(CRYO_TRY_CTX(CaptureThread(p.pid, t), "pid {}", p.pid));
  }
  CRYO_TRYV(CaptureViaRemoteSyscalls(frozen, p));
  CRYO_TRYV(CaptureProcessAttributes(leader, p));
  CRYO_TRYV(CaptureMm(p.pid, p));
  return p;
}

image::Inventory MakeInventory(pid_t root) {
  image::Inventory inv;
  inv.root_pid = root;
  utsname u{};
  if (::uname(&u) == 0) inv.kernel_release = u.release;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  inv.created_ns = now.tv_sec * 1'000'000'000ll + now.tv_nsec;
  return inv;
}

Status WriteStats(const image::ImageDir& dir, const DumpStats& s) {
  nlohmann::json j = {
      {"frozen_seconds", s.frozen_seconds},
      {"total_seconds", s.total_seconds},
      {"phases",
       {{"capture_seconds", s.capture_seconds},
        {"memory_scan_seconds", s.memory_scan_seconds},
        {"memory_copy_seconds", s.memory_copy_seconds},
        {"write_seconds", s.write_seconds}}},
      {"pages_scanned", s.pages_scanned},
      {"pages_written", s.pages_written},
      {"pages_skipped", s.pages_skipped},
      {"bytes_written", s.bytes_written},
  };
  return WriteWholeFile(dir.path() + "/stats-dump.json", j.dump(2) + "\n");
}

}  // namespace

Result<DumpStats> Dump(const DumpOptions& opts) {
  auto t_start = Clock::now();
  DumpStats stats;
  pid_t pid = opts.pid;
  CRYO_TRYV(CheckSupportedShape(pid));
  auto dir = CRYO_TRY(image::ImageDir::Create(opts.images_dir));

  // A job-control stopped process would fall back into its group stop in the middle of our
  // remote syscalls: continue it (before seizing, so no SIGCONT is queued for a default action),
  // and stop it again whenever it is released.
  bool stopped = CRYO_TRY(IsJobStopped(pid));
  if (stopped && ::kill(pid, SIGCONT) < 0) return ErrnoError("continue stopped pid {}", pid);
  auto frozen_or = ptrace::Freezer::FreezeProcess(pid);
  if (!frozen_or) {
    if (stopped) ::kill(pid, SIGSTOP);
    return std::unexpected(std::move(frozen_or).error());
  }
  ptrace::Freezer frozen = std::move(*frozen_or);
  if (stopped) frozen.RestopOnRelease();
  auto t_frozen = Clock::now();
  log::Info("pid {} frozen", pid);
  // Threads or children may have appeared before the freeze took hold.
  CRYO_TRYV(CheckSupportedShape(pid));

  model::Process p = CRYO_TRY(CaptureProcess(frozen));
  p.stopped = stopped;
  stats.capture_seconds = Since(t_frozen);

  auto mem = CRYO_TRY(DumpMemory(dir.fd(), p));
  stats.memory_scan_seconds = mem.scan_seconds;
  stats.memory_copy_seconds = mem.copy_seconds;
  stats.pages_scanned = mem.pages_scanned;
  stats.pages_written = mem.pages_written;
  stats.pages_skipped = mem.pages_scanned - mem.pages_written;
  stats.bytes_written = mem.bytes_written;

  auto t_write = Clock::now();
  model::ProcessTree tree;
  tree.root_pid = pid;
  tree.processes.push_back(std::move(p));
  CRYO_TRYV(image::WriteInventory(dir, MakeInventory(pid)));
  CRYO_TRYV(image::WriteTree(dir, tree));
  stats.write_seconds = Since(t_write);

  // Frozen time ends when the process runs again or is killed; waiting for a killed process to
  // release its memory (tens of ms per GiB) is not time it spends frozen.
  stats.frozen_seconds = Since(t_frozen);
  if (opts.leave_running) {
    CRYO_TRYV(frozen.Release());
  } else {
    CRYO_TRYV(frozen.Kill());
  }
  stats.total_seconds = Since(t_start);
  CRYO_TRYV(WriteStats(dir, stats));
  return stats;
}

}  // namespace cryo::dump
