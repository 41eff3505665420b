#include "dump/capture_timers.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <algorithm>
#include <ctime>

#include "base/io.h"
#include "proc/timers.h"
#include "ptrace/remote_batch.h"

namespace cryo::dump {
namespace {

uint64_t Ns(const struct timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1'000'000'000ull +
         static_cast<uint64_t>(tv.tv_usec) * 1000ull;
}

uint64_t Ns(const struct timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// A call's result, or the error it stands for.
Result<int64_t> Checked(const ptrace::RemoteBatch& b, size_t i, std::string_view what) {
  int64_t r = b.Result(i);
  if (r < 0) return SysError(static_cast<int>(-r), std::string(what));
  return r;
}

}  // namespace

Result<TimerCalls> QueueTimersAndFlags(ptrace::RemoteBatch& b, model::Process& p) {
  TimerCalls c;
  for (int which = 0; which < model::kNumITimers; which++) {
    c.itimers.push_back(
        b.Add(SYS_getitimer, {static_cast<uint64_t>(which)}, sizeof(struct itimerval), 1));
  }
  std::string text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/timers", p.pid)));
  auto entries = CRYO_TRY_CTX(proc::ParseTimers(text), "pid {}", p.pid);
  p.control.posix_timers.clear();
  for (const proc::TimerEntry& e : entries) {
    if (e.notify == SIGEV_THREAD) {
      return MakeError(ErrorKind::kUnsupported, "pid {}: timer {}: SIGEV_THREAD notification",
                       p.pid, e.id);
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
                         "pid {}: timer {} notifies thread {}, which is not a thread of the "
                         "process",
                         p.pid, e.id, e.notify_pid);
      }
      t.notify_tid = e.notify_pid;
    }
    auto id = static_cast<uint64_t>(e.id);
    c.posix.emplace_back(b.Add(SYS_timer_gettime, {id}, sizeof(struct itimerspec), 1),
                         b.Add(SYS_timer_getoverrun, {id}));
    p.control.posix_timers.push_back(t);
  }
  c.pdeathsig = b.Add(SYS_prctl, {PR_GET_PDEATHSIG}, sizeof(int32_t), 1);
  c.subreaper = b.Add(SYS_prctl, {PR_GET_CHILD_SUBREAPER}, sizeof(int32_t), 1);
  return c;
}

Status TakeTimersAndFlags(const ptrace::RemoteBatch& b, const TimerCalls& c, model::Process& p) {
  for (int which = 0; which < model::kNumITimers; which++) {
    CRYO_TRYV(Checked(b, c.itimers[which], fmt::format("pid {}: getitimer({})", p.pid, which)));
    auto v = b.Out<struct itimerval>(c.itimers[which]);
    p.control.itimers[which] = {.value_ns = Ns(v.it_value), .interval_ns = Ns(v.it_interval)};
  }
  for (size_t k = 0; k < c.posix.size(); k++) {
    model::PosixTimer& t = p.control.posix_timers.at(k);
    auto [get, overrun] = c.posix[k];
    CRYO_TRYV(Checked(b, get, fmt::format("pid {}: timer_gettime({})", p.pid, t.id)));
    auto its = b.Out<struct itimerspec>(get);
    t.value_ns = Ns(its.it_value);
    t.interval_ns = Ns(its.it_interval);
    int64_t r =
        CRYO_TRY(Checked(b, overrun, fmt::format("pid {}: timer_getoverrun({})", p.pid, t.id)));
    t.overrun = static_cast<int32_t>(r);
  }
  CRYO_TRYV(Checked(b, c.pdeathsig, fmt::format("pid {}: PR_GET_PDEATHSIG", p.pid)));
  p.control.pdeathsig = b.Out<int32_t>(c.pdeathsig);
  CRYO_TRYV(Checked(b, c.subreaper, fmt::format("pid {}: PR_GET_CHILD_SUBREAPER", p.pid)));
  p.control.child_subreaper = b.Out<int32_t>(c.subreaper) != 0;
  return {};
}

}  // namespace cryo::dump
