#include "dump/capture_thread.h"

#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/io.h"

namespace cryo::dump {
namespace {

// PTRACE_GET_RSEQ_CONFIGURATION (Linux 5.13); glibc's struct __ptrace_rseq_configuration.
constexpr int kGetRseqConfiguration = 0x420f;

struct KernelStack {
  uint64_t sp;
  int32_t flags;
  int32_t pad;
  uint64_t size;
};

Status CaptureRseq(const ptrace::Tracee& t, model::Thread& th) {
  __ptrace_rseq_configuration cfg{};
  long n =
      ::ptrace(static_cast<__ptrace_request>(kGetRseqConfiguration), t.tid(), sizeof cfg, &cfg);
  if (n < 0) return ErrnoError("rseq configuration of thread {}", t.tid());
  th.rseq = cfg.rseq_abi_pointer;
  th.rseq_len = th.rseq ? cfg.rseq_abi_size : 0;
  th.rseq_sig = th.rseq ? cfg.signature : 0;
  return {};
}

// get_robust_list works from outside on a thread we trace (ptrace_may_access).
Status CaptureRobustList(pid_t tid, model::Thread& th) {
  uint64_t head = 0;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, tid, &head, &len) < 0) {
    return ErrnoError("get_robust_list of thread {}", tid);
  }
  th.robust_list = head;
  th.robust_list_len = head ? len : 0;
  return {};
}

}  // namespace

Result<model::Thread> CaptureThread(pid_t pid, const ptrace::Tracee& t) {
  model::Thread th;
  th.tid = t.tid();
  th.regs = CRYO_TRY(t.GetRegs());
  th.xstate = CRYO_TRY(t.GetXstate());
  th.blocked = CRYO_TRY(t.GetSigmask());
  th.pending = CRYO_TRY(t.PeekPending(/*shared=*/false));
  CRYO_TRYV(CaptureRseq(t, th));
  CRYO_TRYV(CaptureRobustList(t.tid(), th));
  std::string comm = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/task/{}/comm", pid, t.tid())));
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  th.comm = comm;
  return th;
}

Status CaptureThreadViaRemoteSyscalls(ptrace::RemoteSyscalls& rs, const ptrace::RemoteScratch& at,
                                      model::Thread& th) {
  const uint64_t addr = at.addr().value();
  int64_t r = CRYO_TRY(rs.Call(SYS_sigaltstack, 0, addr));
  if (r < 0) return SysError(static_cast<int>(-r), fmt::format("sigaltstack in thread {}", th.tid));
  KernelStack ks{};
  CRYO_TRYV(at.Read(0, std::as_writable_bytes(std::span(&ks, 1))));
  th.altstack = {ks.sp, static_cast<uint32_t>(ks.flags), ks.size};
  r = CRYO_TRY(rs.Call(SYS_prctl, PR_GET_TID_ADDRESS, addr));
  if (r < 0) {
    return SysError(static_cast<int>(-r), fmt::format("PR_GET_TID_ADDRESS in thread {}", th.tid));
  }
  uint64_t tid_address = 0;
  CRYO_TRYV(at.Read(0, std::as_writable_bytes(std::span(&tid_address, 1))));
  th.clear_child_tid = tid_address;
  return {};
}

}  // namespace cryo::dump
