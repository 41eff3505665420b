#include "restore/restore.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/io.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/page_chain.h"
#include "image/tree_io.h"
#include "ptrace/tracee.h"
#include "restore/blob_stops.h"
#include "restore/child.h"
#include "restore/fd_tty.h"
#include "restore/finalize.h"
#include "restore/inet.h"
#include "restore/plan.h"
#include "restorer/blob.h"
#include "sys/syscalls.h"

namespace cryo::restore {
namespace {

using Clock = std::chrono::steady_clock;

// A dumped process may linger as a zombie for a moment (its parent reaps it lazily): wait, within
// a bound, until its PID (or a thread's TID: /proc/TID exists for threads too) is free.
Status WaitPidFree(pid_t pid, double seconds) {
  auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  std::string path = fmt::format("/proc/{}", pid);
  struct stat st {};
  while (::stat(path.c_str(), &st) == 0) {
    if (Clock::now() > deadline) {
      return MakeError(ErrorKind::kInvalidArg, "pid {} is in use by another process", pid);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {};
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return ErrnoError("pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Kills and reaps a child that did not make it, so no half-restored process is left. Its traced
// threads report their deaths to us too: reap until no child is left (restore has no other).
void KillChild(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(-1, &status, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
  }
}

std::string ReadChildError(int fd) {
  std::string msg;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
  return msg;
}

// Runs the child (and the threads its blob creates) to their final stops and finishes them.
// Kills it on any failure.
Status DriveChild(pid_t pid, Pipe& sync, Pipe& error, const model::Process& p, const Plan& plan) {
  constexpr long kOptions = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE;
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, kOptions) < 0) {
    int err = errno;
    KillChild(pid);
    return SysError(err, fmt::format("seize restored pid {}", pid));
  }
  ptrace::Tracee child = ptrace::Tracee::Adopt(pid);
  char go = 1;
  (void)!::write(sync.write.get(), &go, 1);
  sync.write.Reset();
  error.write.Reset();
  std::vector<pid_t> tids;
  for (size_t i = 1; i < p.threads.size(); i++) tids.push_back(p.threads[i].tid);
  auto stops = WaitBlobStops(pid, tids);
  if (!stops) {
    child.Forget();
    // Killed first: a child that is still alive holds the error pipe open.
    KillChild(pid);
    std::string msg = ReadChildError(error.read.get());
    if (msg.empty()) msg = stops.error().Message();
    return MakeError(ErrorKind::kInternal, "restore pid {}: {}", pid, msg);
  }
  std::vector<ptrace::Tracee> threads;
  threads.reserve(stops->threads.size());
  for (const BlobStop& s : stops->threads) threads.push_back(ptrace::Tracee::Adopt(s.tid));
  auto done = ReleaseTcpConnections(pid, p);
  if (done) done = Finalize(child, *stops, threads, p, plan);
  if (!done) {
    child.Forget();
    for (auto& t : threads) t.Forget();
    KillChild(pid);
    return Wrapped(std::move(done).error(), fmt::format("restore pid {}", pid));
  }
  return {};
}

Status WriteStats(const std::string& dir, const RestoreResult& r, const model::Process& p) {
  uint64_t pages = 0;
  for (const auto& run : p.pagemap) {
    if (run.flags & model::kPagePresent) pages += run.nr_pages;
  }
  nlohmann::json j = {{"pid", r.pid},
                      {"restore_seconds", r.restore_seconds},
                      {"pid_wait_seconds", r.pid_wait_seconds},
                      {"pages_restored", pages},
                      {"bytes_restored", pages * 4096},
                      {"mappings", p.vmas.size()},
                      {"fds", p.fds.size()}};
  return WriteWholeFile(dir + "/stats-restore.json", j.dump(2) + "\n");
}

}  // namespace

Result<RestoreResult> Restore(const RestoreOptions& opts) {
  auto t0 = Clock::now();
  auto dir = CRYO_TRY(image::ImageDir::Open(opts.images_dir));
  model::ProcessTree tree = CRYO_TRY(image::ReadTree(dir));
  if (tree.processes.size() != 1) {
    return MakeError(ErrorKind::kUnsupported,
                     "image holds {} processes; only single processes are supported yet",
                     tree.processes.size());
  }
  const model::Process& p = tree.processes[0];
  CRYO_TRYV(CheckRestorable(p));
  CRYO_TRYV(CheckInetRestorable(p, opts.tcp_established));
  CRYO_TRYV(CheckShellJob(p, opts.shell_job));  // restore/fd_tty.h
  image::Inventory inv = CRYO_TRY(image::ReadInventory(dir));
  auto chain = CRYO_TRY(image::PageChain::Open(dir, inv, p.pid));
  auto t_wait = Clock::now();
  for (const model::Thread& t : p.threads) CRYO_TRYV(WaitPidFree(t.tid, opts.pid_wait_seconds));
  double pid_wait = std::chrono::duration<double>(Clock::now() - t_wait).count();

  auto sync = CRYO_TRY(MakePipe());
  auto error = CRYO_TRY(MakePipe());
  auto busy = CRYO_TRY(SelfMappings());
  Plan plan =
      CRYO_TRY(MakePlan(p, std::move(busy), restorer::BlobImage().size(), ArenaBytes(p, 1)));
  log::Debug("keep region {:#x}-{:#x}", plan.keep_start, plan.keep_end);

  // Shared memory: created once, before any process, which all inherit it.
  auto shmem = CRYO_TRY(ShmemObjects::Create(tree.shmem, dir.fd()));
  pid_t pid = CRYO_TRY_CTX(sys::Clone3WithTid(p.pid, 0), "create pid {}", p.pid);
  if (pid == 0) {
    ChildContext ctx{&p, &plan, dir.fd(), sync.read.get(), error.write.get(), &chain, &shmem};
    RunChild(ctx);  // never returns
  }
  CRYO_TRYV(DriveChild(pid, sync, error, p, plan));
  CRYO_TRYV(shmem.Commit());

  RestoreResult result;
  result.pid = pid;
  result.pid_wait_seconds = pid_wait;
  result.restore_seconds = std::chrono::duration<double>(Clock::now() - t0).count() - pid_wait;
  if (auto s = WriteStats(dir.path(), result, p); !s) log::Warn("{}", s.error().Message());
  log::Info("pid {} restored in {:.3f} s", pid, result.restore_seconds);
  if (opts.detach) return result;

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("wait for restored pid {}", pid);
  }
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace cryo::restore
