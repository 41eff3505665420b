#include "dump/capture_timers.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <algorithm>
#include <ctime>

#include "base/io.h"
#include "proc/timers.h"

namespace cryo::dump {
namespace {

uint64_t Ns(const struct timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1'000'000'000ull +
         static_cast<uint64_t>(tv.tv_usec) * 1000ull;
}

uint64_t Ns(const struct timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

Status CaptureITimers(ptrace::RemoteSyscalls& rs, const ptrace::RemoteScratch& scratch,
                      model::Process& p) {
  for (int which = 0; which < model::kNumITimers; which++) {
    int64_t r = CRYO_TRY(rs.Call(SYS_getitimer, which, scratch.addr().value()));
    if (r < 0) return SysError(static_cast<int>(-r), fmt::format("getitimer({})", which));
    struct itimerval v {};
    CRYO_TRYV(scratch.Read(0, std::as_writable_bytes(std::span(&v, 1))));
    p.control.itimers[which] = {.value_ns = Ns(v.it_value), .interval_ns = Ns(v.it_interval)};
  }
  return {};
}

Result<int32_t> PrctlGetInt(ptrace::RemoteSyscalls& rs, const ptrace::RemoteScratch& scratch,
                            int option, std::string_view what) {
  int64_t r = CRYO_TRY(rs.Call(SYS_prctl, option, scratch.addr().value()));
  if (r < 0) return SysError(static_cast<int>(-r), std::string(what));
  int32_t v = 0;
  CRYO_TRYV(scratch.Read(0, std::as_writable_bytes(std::span(&v, 1))));
  return v;
}

Status CapturePosixTimers(ptrace::RemoteSyscalls& rs, const ptrace::RemoteScratch& scratch,
                          model::Process& p) {
  std::string text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/timers", p.pid)));
  auto entries = CRYO_TRY(proc::ParseTimers(text));
  for (const proc::TimerEntry& e : entries) {
    if (e.notify == SIGEV_THREAD) {
      return MakeError(ErrorKind::kUnsupported, "timer {}: SIGEV_THREAD notification", e.id);
    }
    model::PosixTimer t{.id = e.id,
                        .clockid = e.clockid,
                        .notify = e.notify,
                        .signo = e.signo,
                        .sigval = e.sigval,
                        .notify_tid = 0};
    if (e.notify == SIGEV_THREAD_ID) {
      bool ours = std::any_of(p.threads.begin(), p.threads.end(),
                              [&](const model::Thread& th) { return th.tid == e.notify_pid; });
      if (!ours) {
        return MakeError(ErrorKind::kUnsupported,
                         "timer {} notifies thread {}, which is not a thread of the process", e.id,
                         e.notify_pid);
      }
      t.notify_tid = e.notify_pid;
    }
    int64_t r = CRYO_TRY(rs.Call(SYS_timer_gettime, e.id, scratch.addr().value()));
    if (r < 0) return SysError(static_cast<int>(-r), fmt::format("timer_gettime({})", e.id));
    struct itimerspec its {};
    CRYO_TRYV(scratch.Read(0, std::as_writable_bytes(std::span(&its, 1))));
    t.value_ns = Ns(its.it_value);
    t.interval_ns = Ns(its.it_interval);
    r = CRYO_TRY(rs.Call(SYS_timer_getoverrun, e.id));
    if (r < 0) return SysError(static_cast<int>(-r), fmt::format("timer_getoverrun({})", e.id));
    t.overrun = static_cast<int32_t>(r);
    p.control.posix_timers.push_back(t);
  }
  return {};
}

}  // namespace

Status CaptureTimersAndFlags(ptrace::RemoteSyscalls& rs, const ptrace::RemoteScratch& scratch,
                             model::Process& p) {
  CRYO_TRYV_CTX(CaptureITimers(rs, scratch, p), "pid {}", p.pid);
  CRYO_TRYV_CTX(CapturePosixTimers(rs, scratch, p), "pid {}", p.pid);
  p.control.pdeathsig =
      CRYO_TRY_CTX(PrctlGetInt(rs, scratch, PR_GET_PDEATHSIG, "PR_GET_PDEATHSIG"), "pid {}", p.pid);
  p.control.child_subreaper =
      CRYO_TRY_CTX(PrctlGetInt(rs, scratch, PR_GET_CHILD_SUBREAPER, "PR_GET_CHILD_SUBREAPER"),
                   "pid {}", p.pid) != 0;
  return {};
}

}  // namespace cryo::dump
