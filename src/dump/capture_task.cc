#include "dump/capture_task.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <cstring>

#include "base/io.h"
#include "dump/capture_thread.h"
#include "proc/stat.h"
#include "proc/status.h"
#include "proc/tasks.h"
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
    int64_t sr = CRYO_TRY(rs.Call(SYS_prctl, PR_GET_CHILD_SUBREAPER, at));
    if (sr < 0) {
      return SysError(static_cast<int>(-sr), fmt::format("PR_GET_CHILD_SUBREAPER in pid {}", pid));
    }
    int subreaper = 0;
    CRYO_TRYV(scratch.Read(0, std::as_writable_bytes(std::span(&subreaper, 1))));
    p.child_subreaper = subreaper != 0;
    // Per-thread state only the thread can report: each runs its own remote syscalls, writing
    // into the scratch page the leader mapped (the threads share the address space).
    CRYO_TRYV(CaptureThreadViaRemoteSyscalls(rs, scratch, p.threads.at(0)));
    for (size_t i = 1; i < frozen.threads().size(); i++) {
      auto trs = CRYO_TRY(ptrace::RemoteSyscalls::Start(frozen.threads()[i], gadget));
      CRYO_TRYV(CaptureThreadViaRemoteSyscalls(trs, scratch, p.threads.at(i)));
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
