#include "restore/finalize.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cerrno>
#include <unordered_map>

#include "base/io.h"
#include "proc/maps.h"
#include "ptrace/remote_syscalls.h"
#include "restore/fd_kinds.h"
#include "restore/task_control.h"
#include "restorer/abi.h"
#include "restorer/blob.h"

namespace cryo::restore {
namespace {

namespace abi = cryo::restorer;

constexpr int64_t kErestartSys = 512, kErestartNoIntr = 513, kErestartNoHand = 514,
                  kErestartRestartBlock = 516;

const char* StepName(uint64_t step) {
  switch (step) {
    case abi::kDone:
      return "done";
    case abi::kBadArena:
      return "arena check";
    case abi::kUnmap:
      return "unmap cryo";
    case abi::kVdso:
      return "map vdso";
    case abi::kMremap:
      return "move mapping";
    case abi::kMprotect:
      return "protect mapping";
    case abi::kMadvise:
      return "advise mapping";
    case abi::kMmMap:
      return "PR_SET_MM_MAP";
    case abi::kRlimit:
      return "rlimit";
    case abi::kAltstack:
      return "sigaltstack";
    case abi::kCreds:
      return "credentials";
    case abi::kComm:
      return "comm";
    case abi::kCloseFds:
      return "close fds";
    case abi::kRseq:
      return "rseq";
    case abi::kRobustList:
      return "robust list";
    case abi::kThreads:
      return "create thread";
    case abi::kThreadSignal:
      return "queue thread signal";
  }
  return "unknown step";
}

Status CheckBlobResult(const ptrace::Tracee& child, int status) {
  if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP) {
    return MakeError(ErrorKind::kInternal, "restorer in pid {} stopped with signal {} ({:#x})",
                     child.tid(), WIFSTOPPED(status) ? WSTOPSIG(status) : 0, status);
  }
  model::GpRegs r = CRYO_TRY(child.GetRegs());
  if (r.rdi != abi::kDone) {
    int err = static_cast<int>(-static_cast<int64_t>(r.rsi));
    return SysError(err, fmt::format("restorer in pid {}: step {} failed at index {}", child.tid(),
                                     StepName(r.rdi), r.rdx));
  }
  return {};
}

// The address space must now be exactly the image's, plus the keep region.
Status VerifyLayout(pid_t pid, const model::Process& p, const Plan& plan) {
  std::string text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/maps", pid)));
  auto maps = CRYO_TRY(proc::ParseMaps(text));
  std::vector<std::pair<uint64_t, uint64_t>> have, want;
  for (const auto& m : maps) {
    if (m.start >= 0x800000000000ull) continue;
    if (m.start >= plan.keep_start && m.end <= plan.keep_end) continue;
    have.emplace_back(m.start, m.end);
  }
  for (const auto& v : p.vmas) want.emplace_back(v.start, v.end);
  // Adjacent mappings may be merged or split differently; compare covered ranges.
  auto coalesce = [](std::vector<std::pair<uint64_t, uint64_t>> v) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (auto& r : v) {
      if (!out.empty() && out.back().second == r.first)
        out.back().second = r.second;
      else
        out.push_back(r);
    }
    return out;
  };
  if (coalesce(have) != coalesce(want)) {
    return MakeError(ErrorKind::kInternal, "pid {}: restored address space differs from the image",
                     pid);
  }
  return {};
}

Status InstallThreadState(const ptrace::Tracee& t, const model::Thread& saved) {
  CRYO_TRYV(t.SetRegs(ResumeRegisters(saved.regs)));
  CRYO_TRYV(t.SetXstate(saved.xstate));
  return t.SetSigmask(saved.blocked);
}

}  // namespace

model::GpRegs ResumeRegisters(const model::GpRegs& saved) {
  model::GpRegs r = saved;
  auto orig = static_cast<int64_t>(r.orig_rax);
  auto ret = static_cast<int64_t>(r.rax);
  if (orig >= 0) {
    if (ret == -kErestartSys || ret == -kErestartNoIntr || ret == -kErestartNoHand) {
      // Interrupted before it completed: run it again, as the kernel does on resume.
      r.rax = r.orig_rax;
      r.rip -= 2;
    } else if (ret == -kErestartRestartBlock) {
      // The kernel's restart block (e.g. a sleep's deadline) did not survive; the call returns
      // EINTR, which its callers handle (nanosleep reports the time left).
      r.rax = static_cast<uint64_t>(-EINTR);
    }
  }
  r.orig_rax = ~0ull;
  return r;
}

Status Finalize(ptrace::Tracee& leader, const BlobStops& stops,
                std::vector<ptrace::Tracee>& threads, const model::Process& p, const Plan& plan) {
  CRYO_TRYV(CheckBlobResult(leader, stops.leader.status));
  if (threads.size() != stops.threads.size() || threads.size() + 1 != p.threads.size()) {
    return MakeError(ErrorKind::kInternal, "pid {}: {} of {} threads reached the restorer's end",
                     leader.tid(), threads.size() + 1, p.threads.size());
  }
  std::unordered_map<pid_t, const model::Thread*> by_tid;
  for (const model::Thread& t : p.threads) by_tid[t.tid] = &t;
  for (size_t i = 0; i < threads.size(); i++) {
    CRYO_TRYV(CheckBlobResult(threads[i], stops.threads[i].status));
    if (!by_tid.contains(threads[i].tid())) {
      return MakeError(ErrorKind::kInternal, "pid {}: thread {} is not in the image", leader.tid(),
                       threads[i].tid());
    }
  }
  CRYO_TRYV(VerifyLayout(leader.tid(), p, plan));
  CRYO_TRYV(RegisterUffdRanges(leader.tid(), p));  // restore/fd_userfaultfd.cc
  {
    // Every thread is stopped at its final int3 by now: none runs in the keep region any more.
    RemoteAddr gadget(plan.blob_addr + abi::kSyscallGadgetOffset);
    auto rs = CRYO_TRY(ptrace::RemoteSyscalls::Start(leader, gadget));
    // The bottom of the blob's stack: no thread runs on it any more.
    const uint64_t scratch = plan.stack_top - restorer::kBlobStackSize;
    // pdeathsig (replacing cryo's SIGKILL), subreaper and timers (restore/task_control.h).
    CRYO_TRYV(RestoreTimersAndFlags(rs, leader.tid(), scratch, p));
    int64_t r = 0;
    // Last, as the blob needed a dumpable process; cryo (root) may trace it either way.
    // 2 (suid_dumpable) is set only by the kernel itself on a credential change.
    if (p.dumpable <= 1) {
      r = CRYO_TRY(rs.Call(SYS_prctl, PR_SET_DUMPABLE, p.dumpable));
      if (r < 0) return SysError(static_cast<int>(-r), fmt::format("set dumpable {}", p.dumpable));
    }
    CRYO_TRYV(RestoreSeccomp(leader, rs, threads, gadget, scratch, p));
    // The last syscall runs from the region it unmaps: the thread never returns there, as its
    // registers are replaced at the syscall-exit stop.
    r = CRYO_TRY(rs.Call(SYS_munmap, plan.keep_start, plan.keep_end - plan.keep_start));
    if (r < 0) return SysError(static_cast<int>(-r), "unmap keep region");
    rs.Abandon();
  }
  CRYO_TRYV(InstallThreadState(leader, p.threads.at(0)));
  for (ptrace::Tracee& t : threads) CRYO_TRYV(InstallThreadState(t, *by_tid.at(t.tid())));
  return {};  // the caller detaches, and stops what was stopped (see DriveTree)
}

}  // namespace cryo::restore
