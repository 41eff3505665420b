#include "restore/task_control.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <ctime>
#include <span>

#include "base/log.h"
#include "sys/compat_uapi.h"

namespace cryo::restore {
namespace {

Status WriteMemory(pid_t pid, uint64_t addr, std::span<const std::byte> data) {
  struct iovec local {
    const_cast<std::byte*>(data.data()), data.size()
  };
  struct iovec remote {
    reinterpret_cast<void*>(addr), data.size()
  };
  ssize_t n = ::process_vm_writev(pid, &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(data.size())) {
    return ErrnoError("pid {}: write {} bytes at {:#x}", pid, data.size(), addr);
  }
  return {};
}

template <typename T>
Status WriteValue(pid_t pid, uint64_t addr, const T& v) {
  return WriteMemory(pid, addr, std::as_bytes(std::span(&v, 1)));
}

struct timeval Tv(uint64_t ns) {
  return {static_cast<time_t>(ns / 1'000'000'000ull),
          static_cast<suseconds_t>(ns % 1'000'000'000ull / 1000)};
}

struct timespec Ts(uint64_t ns) {
  return {static_cast<time_t>(ns / 1'000'000'000ull), static_cast<long>(ns % 1'000'000'000ull)};
}

Status Check(int64_t r, std::string what) {
  if (r < 0) return SysError(static_cast<int>(-r), std::move(what));
  return {};
}

// Creates every timer under its old id (PR_TIMER_CREATE_RESTORE_IDS: timer_create reads the id
// to use from *timer_id), disarmed; they are armed in ArmPosixTimers.
Status CreatePosixTimers(ptrace::RemoteSyscalls& rs, pid_t pid, uint64_t scratch,
                         const model::Process& p) {
  const auto& timers = p.control.posix_timers;
  if (timers.empty()) return {};
  int64_t r = CRYO_TRY(
      rs.Call(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0));
  if (r < 0) {
    return SysError(static_cast<int>(-r),
                    "PR_TIMER_CREATE_RESTORE_IDS (needs Linux 6.14 and CAP_CHECKPOINT_RESTORE)");
  }
  const uint64_t sev_at = scratch, id_at = scratch + 128;
  for (const model::PosixTimer& t : timers) {
    struct sigevent sev {};
    sev.sigev_notify = t.notify;
    sev.sigev_signo = t.signo;
    sev.sigev_value.sival_ptr = reinterpret_cast<void*>(t.sigval);
    if (t.notify == SIGEV_THREAD_ID) sev._sigev_un._tid = t.notify_tid;
    CRYO_TRYV(WriteValue(pid, sev_at, sev));
    CRYO_TRYV(WriteValue(pid, id_at, t.id));
    r = CRYO_TRY(rs.Call(SYS_timer_create, static_cast<uint64_t>(t.clockid), sev_at, id_at));
    CRYO_TRYV(Check(r, fmt::format("timer_create id {} clock {}", t.id, t.clockid)));
  }
  r = CRYO_TRY(
      rs.Call(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0));
  return Check(r, "PR_TIMER_CREATE_RESTORE_IDS off");
}

Status ArmTimers(ptrace::RemoteSyscalls& rs, pid_t pid, uint64_t scratch, const model::Process& p) {
  for (const model::PosixTimer& t : p.control.posix_timers) {
    if (t.value_ns == 0) continue;  // disarmed
    struct itimerspec its {
      Ts(t.interval_ns), Ts(t.value_ns)
    };
    CRYO_TRYV(WriteValue(pid, scratch, its));
    int64_t r = CRYO_TRY(rs.Call(SYS_timer_settime, static_cast<uint64_t>(t.id), 0, scratch, 0));
    CRYO_TRYV(Check(r, fmt::format("timer_settime id {}", t.id)));
  }
  // ITIMER_REAL last: the one whose time runs by the wall clock.
  for (int which = model::kNumITimers - 1; which >= 0; which--) {
    const model::ITimer& it = p.control.itimers[which];
    if (it.value_ns == 0) continue;
    struct itimerval v {
      Tv(it.interval_ns), Tv(it.value_ns)
    };
    // A value below 1 µs would read as "disarm".
    if (v.it_value.tv_sec == 0 && v.it_value.tv_usec == 0) v.it_value.tv_usec = 1;
    CRYO_TRYV(WriteValue(pid, scratch, v));
    int64_t r = CRYO_TRY(rs.Call(SYS_setitimer, which, scratch, 0));
    CRYO_TRYV(Check(r, fmt::format("setitimer({})", which)));
  }
  return {};
}

bool SameChains(const model::TaskControl& c) {
  for (const model::ThreadSeccomp& t : c.seccomp) {
    if (t.filters != c.seccomp.front().filters) return false;
  }
  return true;
}

Status InstallChain(ptrace::RemoteSyscalls& rs, pid_t pid, uint64_t scratch,
                    const model::ThreadSeccomp& chain, uint64_t extra_flags) {
  const uint64_t prog_at = scratch, insns_at = scratch + 64;
  for (size_t i = 0; i < chain.filters.size(); i++) {
    const model::SeccompFilter& f = chain.filters[i];
    CRYO_TRYV(WriteMemory(pid, insns_at, std::as_bytes(std::span(f.insns))));
    struct sock_fprog prog {
      static_cast<unsigned short>(f.insns.size() / sizeof(struct sock_filter)),
          reinterpret_cast<struct sock_filter*>(insns_at)
    };
    CRYO_TRYV(WriteValue(pid, prog_at, prog));
    int64_t r =
        CRYO_TRY(rs.Call(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f.flags | extra_flags, prog_at));
    if (r < 0) {
      return SysError(static_cast<int>(-r),
                      fmt::format("thread {}: install seccomp filter {} of {}{}", chain.tid, i + 1,
                                  chain.filters.size(),
                                  -r == EACCES ? " (no no_new_privs and no CAP_SYS_ADMIN)" : ""));
    }
    if (r > 0) {
      return MakeError(ErrorKind::kInternal,
                       "thread {}: seccomp filter {} could not be synchronised to thread {}",
                       chain.tid, i + 1, r);
    }
  }
  return {};
}

}  // namespace

Status RestoreTimersAndFlags(ptrace::RemoteSyscalls& rs, pid_t pid, uint64_t scratch,
                             const model::Process& p) {
  const model::TaskControl& c = p.control;
  int64_t r = CRYO_TRY(rs.Call(SYS_prctl, PR_SET_PDEATHSIG, static_cast<uint64_t>(c.pdeathsig)));
  CRYO_TRYV(Check(r, fmt::format("set pdeathsig {}", c.pdeathsig)));
  if (c.child_subreaper) {
    r = CRYO_TRY(rs.Call(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1));
    CRYO_TRYV(Check(r, "set child subreaper"));
  }
  CRYO_TRYV(CreatePosixTimers(rs, pid, scratch, p));
  return ArmTimers(rs, pid, scratch, p);
}

Status RestoreSeccomp(ptrace::Tracee& leader, ptrace::RemoteSyscalls& leader_rs,
                      std::vector<ptrace::Tracee>& threads, RemoteAddr gadget, uint64_t scratch,
                      const model::Process& p) {
  const model::TaskControl& c = p.control;
  if (c.seccomp.empty()) return {};
  constexpr long kOptions = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP;
  if (::ptrace(PTRACE_SETOPTIONS, leader.tid(), nullptr, kOptions) < 0) {
    return ErrnoError("suspend seccomp of pid {}", leader.tid());
  }
  for (const ptrace::Tracee& t : threads) {
    if (::ptrace(PTRACE_SETOPTIONS, t.tid(), nullptr, kOptions) < 0) {
      return ErrnoError("suspend seccomp of thread {}", t.tid());
    }
  }
  if (SameChains(c)) {
    // One filter tree shared by all threads, as a TSYNC or inherited chain is.
    uint64_t flags = threads.empty() ? 0 : SECCOMP_FILTER_FLAG_TSYNC;
    return InstallChain(leader_rs, leader.tid(), scratch, c.seccomp.front(), flags);
  }
  CRYO_TRYV(InstallChain(leader_rs, leader.tid(), scratch, c.seccomp.front(), 0));
  for (ptrace::Tracee& t : threads) {
    const model::ThreadSeccomp* chain = nullptr;
    for (const auto& s : c.seccomp) {
      if (s.tid == t.tid()) chain = &s;
    }
    if (chain == nullptr || chain->filters.empty()) continue;
    auto rs = CRYO_TRY(ptrace::RemoteSyscalls::Start(t, gadget));
    Status done = InstallChain(rs, leader.tid(), scratch, *chain, 0);
    // Its registers are replaced with the saved ones after this: nothing to put back.
    rs.Abandon();
    CRYO_TRYV(done);
  }
  return {};
}

}  // namespace cryo::restore
