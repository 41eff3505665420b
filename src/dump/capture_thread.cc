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

size_t QueueThreadCalls(ptrace::RemoteBatch& b) {
  size_t first = b.Add(SYS_sigaltstack, {0, 0}, sizeof(KernelStack), 1);
  b.Add(SYS_prctl, {PR_GET_TID_ADDRESS}, sizeof(uint64_t), 1);
  return first;
}

Status TakeThreadCalls(const ptrace::RemoteBatch& b, size_t first, model::Thread& th) {
  if (int64_t r = b.Result(first); r < 0) {
    return SysError(static_cast<int>(-r), fmt::format("sigaltstack in thread {}", th.tid));
  }
  auto ks = b.Out<KernelStack>(first);
  th.altstack = {ks.sp, static_cast<uint32_t>(ks.flags), ks.size};
  if (int64_t r = b.Result(first + 1); r < 0) {
    return SysError(static_cast<int>(-r), fmt::format("PR_GET_TID_ADDRESS in thread {}", th.tid));
  }
  th.clear_child_tid = b.Out<uint64_t>(first + 1);
  return {};
}

}  // namespace cryo::dump
