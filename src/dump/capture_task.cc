#include "dump/capture_task.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/io.h"
#include "dump/capture_thread.h"
#include "dump/capture_timers.h"
#include "proc/stat.h"
#include "proc/status.h"
#include "proc/tasks.h"
#include "ptrace/remote_batch.h"
#include "ptrace/remote_syscalls.h"
#include "sys/kernel_abi.h"

namespace cryo::dump {
namespace {

using sys::KernelSigaction;

}  // namespace

Status CaptureViaRemoteSyscalls(const ptrace::Freezer& frozen, model::Process& p) {
  const ptrace::Tracee& leader = frozen.threads().at(0);
  pid_t pid = leader.tid();
  auto gadget = CRYO_TRY(ptrace::FindSyscallGadget(pid));
  auto rs = CRYO_TRY(ptrace::RemoteSyscalls::Start(leader, gadget));
  {
    // Room for the code of about 150 calls (ptrace/remote_batch.h); more run in chunks.
    auto scratch = CRYO_TRY(ptrace::RemoteScratch::Map(rs, pid, 16 << 10, /*exec=*/true));
    ptrace::RemoteBatch b;
    std::vector<size_t> sigactions(model::kNumSignals, SIZE_MAX);
    for (int sig = 1; sig <= model::kNumSignals; sig++) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      sigactions[sig - 1] = b.Add(SYS_rt_sigaction, {static_cast<uint64_t>(sig), 0, 0, 8},
                                  sizeof(KernelSigaction), 2);
    }
    // Limits are read by the process itself: prlimit() on a process of another user needs
    // CAP_SYS_RESOURCE, which cryo may not have.
    std::vector<size_t> rlimits;
    for (int res = 0; res < model::kNumRlimits; res++) {
      rlimits.push_back(b.Add(SYS_prlimit64, {0, static_cast<uint64_t>(res)}, 16, 3));
    }
    size_t dumpable = b.Add(SYS_prctl, {PR_GET_DUMPABLE});
    size_t brk = b.Add(SYS_brk, {0});
    auto timers = CRYO_TRY(QueueTimersAndFlags(b, p));
    size_t own = QueueThreadCalls(b);
    CRYO_TRYV_CTX(b.Run(rs, scratch, pid), "pid {}", pid);

    p.sigactions.assign(model::kNumSignals, {});
    for (int sig = 1; sig <= model::kNumSignals; sig++) {
      size_t i = sigactions[sig - 1];
      if (i == SIZE_MAX) continue;
      if (int64_t r = b.Result(i); r < 0) {
        return SysError(static_cast<int>(-r), fmt::format("rt_sigaction({}) in pid {}", sig, pid));
      }
      auto ka = b.Out<KernelSigaction>(i);
      p.sigactions[sig - 1] = {ka.handler, ka.flags, ka.restorer, ka.mask};
    }
    p.rlimits.assign(model::kNumRlimits, {});
    for (int res = 0; res < model::kNumRlimits; res++) {
      if (int64_t r = b.Result(rlimits[res]); r < 0) {
        return SysError(static_cast<int>(-r), fmt::format("prlimit {} in pid {}", res, pid));
      }
      auto lim = b.Out<std::array<uint64_t, 2>>(rlimits[res]);
      p.rlimits[res] = {lim[0], lim[1]};
    }
    if (int64_t r = b.Result(dumpable); r < 0) {
      return SysError(static_cast<int>(-r), fmt::format("PR_GET_DUMPABLE in pid {}", pid));
    }
    p.dumpable = static_cast<uint32_t>(b.Result(dumpable));
    if (int64_t r = b.Result(brk); r < 0) {
      return SysError(static_cast<int>(-r), fmt::format("brk in pid {}", pid));
    }
    p.mm.brk = static_cast<uint64_t>(b.Result(brk));
    CRYO_TRYV(TakeTimersAndFlags(b, timers, p));
    CRYO_TRYV(TakeThreadCalls(b, own, p.threads.at(0)));
    // Per-thread state only the thread can report: each runs its own calls, in the scratch the
    // leader mapped (the threads share the address space).
    for (size_t i = 1; i < frozen.threads().size(); i++) {
      auto trs = CRYO_TRY(ptrace::RemoteSyscalls::Start(frozen.threads()[i], gadget));
      ptrace::RemoteBatch tb;
      size_t first = QueueThreadCalls(tb);
      CRYO_TRYV_CTX(tb.Run(trs, scratch, frozen.threads()[i].tid()), "pid {}", pid);
      CRYO_TRYV(TakeThreadCalls(tb, first, p.threads.at(i)));
      CRYO_TRYV(trs.Finish());
    }
    CRYO_TRYV(scratch.Unmap());
  }
  return rs.Finish();
}

Status CaptureProcessAttributes(const ptrace::Tracee& leader, model::Process& p) {
  pid_t pid = leader.tid();
  auto st = CRYO_TRY(proc::ReadStatus(pid));
  auto ps = CRYO_TRY(proc::ReadStat(pid));
  p.pid = pid;
  p.ppid = ps.ppid;
  p.pgid = ps.pgrp;
  p.sid = ps.session;
  p.umask = st.umask;
  p.no_new_privs = st.no_new_privs != 0;
  std::string persona = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/personality", pid)));
  p.personality = static_cast<uint32_t>(std::strtoul(persona.c_str(), nullptr, 16));
  p.creds.uids = st.uids;
  p.creds.gids = st.gids;
  p.creds.groups = st.groups;
  p.creds.cap_inh = st.cap_inh;
  p.creds.cap_prm = st.cap_prm;
  p.creds.cap_eff = st.cap_eff;
  p.creds.cap_bnd = st.cap_bnd;
  p.creds.cap_amb = st.cap_amb;
  std::string comm = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/comm", pid)));
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  p.comm = comm;
  p.cwd = CRYO_TRY(proc::ReadLink(fmt::format("/proc/{}/cwd", pid)));
  p.root = CRYO_TRY(proc::ReadLink(fmt::format("/proc/{}/root", pid)));
  if (p.cwd.ends_with(" (deleted)")) {
    return MakeError(ErrorKind::kUnsupported, "pid {}: its cwd {} was deleted", pid, p.cwd);
  }
  p.shared_pending = CRYO_TRY(leader.PeekPending(/*shared=*/true));
  return {};
}

}  // namespace cryo::dump
