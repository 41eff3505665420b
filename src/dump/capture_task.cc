#include "dump/capture_task.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <cstring>

#include "base/io.h"
#include "proc/stat.h"
#include "proc/status.h"
#include "proc/tasks.h"
#include "ptrace/remote_syscalls.h"

namespace cryo::dump {
namespace {

// The kernel's struct sigaction for rt_sigaction (not glibc's).
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

struct KernelStack {
  uint64_t sp;
  int32_t flags;
  int32_t pad;
  uint64_t size;
};

}  // namespace

Result<model::Thread> CaptureThread(const ptrace::Tracee& t) {
  model::Thread th;
  th.tid = t.tid();
  th.regs = CRYO_TRY(t.GetRegs());
  th.xstate = CRYO_TRY(t.GetXstate());
  th.blocked = CRYO_TRY(t.GetSigmask());
  return th;
}

Status CaptureViaRemoteSyscalls(const ptrace::Tracee& leader, model::Process& p) {
  pid_t pid = leader.tid();
  auto gadget = CRYO_TRY(ptrace::FindSyscallGadget(pid));
  auto rs = CRYO_TRY(ptrace::RemoteSyscalls::Start(leader, gadget));
  {
    auto scratch = CRYO_TRY(ptrace::RemoteScratch::Map(rs, pid, 4096));
    uint64_t at = scratch.addr().value();
    p.sigactions.assign(model::kNumSignals, {});
    for (int sig = 1; sig <= model::kNumSignals; sig++) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      int64_t r = CRYO_TRY(rs.Call(SYS_rt_sigaction, sig, 0, at, 8));
      if (r < 0)
        return SysError(static_cast<int>(-r), fmt::format("rt_sigaction({}) in pid {}", sig, pid));
      KernelSigaction ka{};
      CRYO_TRYV(scratch.Read(0, std::as_writable_bytes(std::span(&ka, 1))));
      p.sigactions[sig - 1] = {ka.handler, ka.flags, ka.restorer, ka.mask};
    }
    int64_t r = CRYO_TRY(rs.Call(SYS_sigaltstack, 0, at));
    if (r < 0) return SysError(static_cast<int>(-r), fmt::format("sigaltstack in pid {}", pid));
    KernelStack ks{};
    CRYO_TRYV(scratch.Read(0, std::as_writable_bytes(std::span(&ks, 1))));
    p.threads.at(0).altstack = {ks.sp, static_cast<uint32_t>(ks.flags), ks.size};
    // Limits are read by the process itself: prlimit() on a process of another user needs
    // CAP_SYS_RESOURCE, which cryo may not have.
    p.rlimits.assign(model::kNumRlimits, {});
    for (int res = 0; res < model::kNumRlimits; res++) {
      int64_t rc = CRYO_TRY(rs.Call(SYS_prlimit64, 0, res, 0, at));
      if (rc < 0) {
        return SysError(static_cast<int>(-rc), fmt::format("prlimit {} in pid {}", res, pid));
      }
      uint64_t lim[2] = {};
      CRYO_TRYV(scratch.Read(0, std::as_writable_bytes(std::span(lim))));
      p.rlimits[res] = {lim[0], lim[1]};
    }
    int64_t dumpable = CRYO_TRY(rs.Call(SYS_prctl, PR_GET_DUMPABLE));
    if (dumpable < 0) {
      return SysError(static_cast<int>(-dumpable), fmt::format("PR_GET_DUMPABLE in pid {}", pid));
    }
    p.dumpable = static_cast<uint32_t>(dumpable);
    int64_t brk = CRYO_TRY(rs.Call(SYS_brk, 0));
    if (brk < 0) return SysError(static_cast<int>(-brk), fmt::format("brk in pid {}", pid));
    p.mm.brk = static_cast<uint64_t>(brk);
    CRYO_TRYV(scratch.Unmap());
  }
  return rs.Finish();
}

Status CaptureProcessAttributes(const ptrace::Tracee& leader, model::Process& p) {
  pid_t pid = leader.tid();
  std::string status_text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/status", pid)));
  auto st = CRYO_TRY_CTX(proc::ParseStatus(status_text), "status of pid {}", pid);
  std::string stat_text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/stat", pid)));
  auto ps = CRYO_TRY_CTX(proc::ParseStat(stat_text), "stat of pid {}", pid);
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
  p.threads.at(0).pending = CRYO_TRY(leader.PeekPending(/*shared=*/false));
  return {};
}

}  // namespace cryo::dump
