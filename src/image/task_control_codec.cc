#include "image/task_control_codec.h"

#include <linux/seccomp.h>
#include <signal.h>

#include <algorithm>
#include <set>

namespace cryo::image {
namespace {

// linux/filter.h: BPF_MAXINSNS; struct sock_filter is 8 bytes.
constexpr size_t kMaxFilterInsns = 4096;
constexpr size_t kSockFilterSize = 8;
constexpr uint64_t kMaxTimerNs = 1'000'000'000ull * 60 * 60 * 24 * 365 * 100;  // 100 years

std::unexpected<Error> Corrupt(std::string_view what) {
  return MakeError(ErrorKind::kCorruptImage, "core: {}", what);
}

Status CheckTimer(const model::PosixTimer& t, const std::set<pid_t>& tids) {
  auto bad = [&](std::string_view why) {
    return MakeError(ErrorKind::kCorruptImage, "core: posix timer {}: {}", t.id, why);
  };
  if (t.id < 0) return bad("negative id");
  if (t.notify != SIGEV_SIGNAL && t.notify != SIGEV_NONE && t.notify != SIGEV_THREAD_ID) {
    return bad(fmt::format("notify {} unknown", t.notify));
  }
  if (t.notify != SIGEV_NONE && (t.signo < 1 || t.signo > 64)) {
    return bad(fmt::format("signal {} out of range", t.signo));
  }
  if (t.notify == SIGEV_THREAD_ID && !tids.contains(t.notify_tid)) {
    return bad(fmt::format("notifies thread {}, not a thread of the process", t.notify_tid));
  }
  if (t.value_ns > kMaxTimerNs || t.interval_ns > kMaxTimerNs) return bad("time out of range");
  return {};
}

}  // namespace

void TaskControlToProto(const model::TaskControl& in, pb::TaskControl& out) {
  for (const model::ITimer& t : in.itimers) {
    pb::ITimer* o = out.add_itimers();
    o->set_value_ns(t.value_ns);
    o->set_interval_ns(t.interval_ns);
  }
  for (const model::PosixTimer& t : in.posix_timers) {
    pb::PosixTimer* o = out.add_posix_timers();
    o->set_id(t.id);
    o->set_clockid(t.clockid);
    o->set_notify(t.notify);
    o->set_signo(t.signo);
    o->set_sigval(t.sigval);
    o->set_notify_tid(t.notify_tid);
    o->set_value_ns(t.value_ns);
    o->set_interval_ns(t.interval_ns);
    o->set_overrun(t.overrun);
  }
  out.set_pdeathsig(in.pdeathsig);
  out.set_child_subreaper(in.child_subreaper);
  for (const model::ThreadSeccomp& s : in.seccomp) {
    pb::ThreadSeccomp* o = out.add_seccomp();
    o->set_tid(s.tid);
    for (const model::SeccompFilter& f : s.filters) {
      pb::SeccompFilter* of = o->add_filters();
      of->set_flags(f.flags);
      of->set_insns(f.insns);
    }
  }
}

model::TaskControl TaskControlFromProto(const pb::TaskControl& in) {
  model::TaskControl c;
  // Fewer than three itimers (an image without the message) leaves the rest disarmed; more
  // are refused by the wire limits.
  for (int i = 0; i < in.itimers_size() && i < model::kNumITimers; i++) {
    c.itimers[i] = {.value_ns = in.itimers(i).value_ns(),
                    .interval_ns = in.itimers(i).interval_ns()};
  }
  for (const pb::PosixTimer& t : in.posix_timers()) {
    c.posix_timers.push_back({.id = t.id(),
                              .clockid = t.clockid(),
                              .notify = t.notify(),
                              .signo = t.signo(),
                              .sigval = t.sigval(),
                              .notify_tid = t.notify_tid(),
                              .value_ns = t.value_ns(),
                              .interval_ns = t.interval_ns(),
                              .overrun = t.overrun()});
  }
  c.pdeathsig = in.pdeathsig();
  c.child_subreaper = in.child_subreaper();
  for (const pb::ThreadSeccomp& s : in.seccomp()) {
    model::ThreadSeccomp ts{.tid = s.tid(), .filters = {}};
    for (const pb::SeccompFilter& f : s.filters()) {
      ts.filters.push_back({.flags = f.flags(), .insns = f.insns()});
    }
    c.seccomp.push_back(std::move(ts));
  }
  return c;
}

Status ValidateTaskControl(const model::Process& p) {
  const model::TaskControl& c = p.control;
  std::set<pid_t> tids;
  for (const model::Thread& t : p.threads) tids.insert(t.tid);
  for (size_t i = 0; i < c.itimers.size(); i++) {
    if (c.itimers[i].value_ns > kMaxTimerNs || c.itimers[i].interval_ns > kMaxTimerNs) {
      return Corrupt(fmt::format("itimer {} out of range", i));
    }
  }
  for (size_t i = 0; i < c.posix_timers.size(); i++) {
    CRYO_TRYV(CheckTimer(c.posix_timers[i], tids));
    if (i > 0 && c.posix_timers[i].id <= c.posix_timers[i - 1].id) {
      return Corrupt(
          fmt::format("posix timer ids not sorted or repeated at {}", c.posix_timers[i].id));
    }
  }
  if (c.pdeathsig < 0 || c.pdeathsig > 64) {
    return Corrupt(fmt::format("pdeathsig {} out of range", c.pdeathsig));
  }
  if (!c.seccomp.empty() && c.seccomp.size() != p.threads.size()) {
    return Corrupt(fmt::format("seccomp filters for {} threads, the process has {}",
                               c.seccomp.size(), p.threads.size()));
  }
  for (size_t i = 0; i < c.seccomp.size(); i++) {
    if (c.seccomp[i].tid != p.threads[i].tid) {
      return Corrupt(fmt::format("seccomp entry {} is for tid {}, expected {}", i, c.seccomp[i].tid,
                                 p.threads[i].tid));
    }
    for (const model::SeccompFilter& f : c.seccomp[i].filters) {
      size_t n = f.insns.size() / kSockFilterSize;
      if (f.insns.size() % kSockFilterSize != 0 || n == 0 || n > kMaxFilterInsns) {
        return Corrupt(fmt::format("seccomp filter of tid {}: {} bytes is not 1..{} instructions",
                                   c.seccomp[i].tid, f.insns.size(), kMaxFilterInsns));
      }
      if ((f.flags & ~uint32_t{SECCOMP_FILTER_FLAG_LOG}) != 0) {
        return Corrupt(
            fmt::format("seccomp filter of tid {}: flags {:#x}", c.seccomp[i].tid, f.flags));
      }
    }
  }
  return {};
}

}  // namespace cryo::image
