// Per-thread steps of the blob and the creation of the other threads. See thread.h.
#include "restorer/blob/thread.h"

#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/signal.h>

#include "restorer/blob/syscall.h"

// entry.S: clone3(args, size); in the new thread, calls cryo_blob_thread_main(spec, arena) on
// the stack clone3 gave it; in the caller, returns clone3's result.
extern "C" long cryo_blob_clone_thread(void* args, unsigned long size,
                                       const cryo::restorer::ThreadSpec* spec,
                                       const cryo::restorer::Arena* arena);

namespace cryo::restorer::blob {
namespace {

constexpr long kEinval = -22;

// A created thread's whole life in the blob. Credentials are per task: each thread applies
// them itself (it was cloned with cryo's, before the leader changed its own).
Outcome RestoreThread(const Arena& a, const ThreadSpec& t) {
  if (Outcome o = SetAltstack(t); !o.ok()) return o;
  if (Outcome o = SetTaskPointers(t); !o.ok()) return o;
  if (Outcome o = QueueOwnSignals(a, t); !o.ok()) return o;
  if (Outcome o = ApplyCreds(a); !o.ok()) return o;
  return SetComm(t);
}

}  // namespace

Outcome SetAltstack(const ThreadSpec& t) {
  stack_t ss;
  if (t.altstack_flags & SS_DISABLE) {
    ss.ss_sp = nullptr;
    ss.ss_flags = SS_DISABLE;
    ss.ss_size = 0;
  } else {
    ss.ss_sp = reinterpret_cast<void*>(t.altstack_sp);
    ss.ss_flags = static_cast<int>(t.altstack_flags);
    ss.ss_size = t.altstack_size;
  }
  long r = Syscall(__NR_sigaltstack, Arg(&ss), 0);
  if (IsError(r)) return Fail(kAltstack, r);
  return {};
}

Outcome SetTaskPointers(const ThreadSpec& t) {
  // The kernel only stores these; a zero head with the kernel's length clears the list.
  const uint64_t robust_len = t.robust_list_len ? t.robust_list_len : 24;
  long r = Syscall(__NR_set_robust_list, static_cast<long>(t.robust_list),
                   static_cast<long>(robust_len));
  if (IsError(r)) return Fail(kRobustList, r);
  Syscall(__NR_set_tid_address, static_cast<long>(t.clear_child_tid));  // cannot fail
  if (t.rseq != 0) {
    r = Syscall(__NR_rseq, static_cast<long>(t.rseq), t.rseq_len, 0, t.rseq_sig);
    if (IsError(r)) return Fail(kRseq, r, 1);
  }
  return {};
}

Outcome SetComm(const ThreadSpec& t) {
  char comm[16];
  for (int i = 0; i < 15; ++i) comm[i] = t.comm[i];
  comm[15] = '\0';
  long r = Syscall(__NR_prctl, PR_SET_NAME, Arg(comm));
  if (IsError(r)) return Fail(kComm, r);
  return {};
}

// A thread of the target shares everything a thread shares; the kernel starts it with no
// altstack, rseq, robust list or clear_child_tid (CLONE_VM resets them), and with the
// creator's signal mask: all blocked.
Outcome CreateThreads(const Arena& a) {
  const ThreadSpec* threads = ArenaArray<ThreadSpec>(a, a.threads_offset);
  for (uint32_t i = 0; i < a.thread_count; ++i) {
    const ThreadSpec& t = threads[i];
    int32_t tid = t.tid;
    clone_args args = {};
    args.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    args.stack = t.stack_top - kThreadStackSize;
    args.stack_size = kThreadStackSize;
    args.set_tid = static_cast<uint64_t>(Arg(&tid));
    args.set_tid_size = 1;
    long r = cryo_blob_clone_thread(&args, sizeof args, &t, &a);
    if (IsError(r)) return Fail(kThreads, r, i);
    if (r != tid) return Fail(kThreads, kEinval, i, static_cast<uint64_t>(r));
  }
  return {};
}

// Every signal stays pending: the thread was created with all signals blocked. The parent sets
// the final mask.
Outcome QueueOwnSignals(const Arena& a, const ThreadSpec& t) {
  const QueuedSignal* sigs = ArenaArray<QueuedSignal>(a, a.signals_offset);
  const long tgid = Syscall(__NR_getpid);
  for (uint32_t i = t.signal_first; i < t.signal_first + t.signal_count; ++i) {
    long r = Syscall(__NR_rt_tgsigqueueinfo, tgid, t.tid, sigs[i].signo, Arg(sigs[i].info));
    if (IsError(r)) return Fail(kThreadSignal, r, i);
  }
  return {};
}

}  // namespace cryo::restorer::blob

extern "C" [[noreturn]] __attribute__((used)) void cryo_blob_thread_main(
    const cryo::restorer::ThreadSpec* spec, const cryo::restorer::Arena* arena) {
  cryo::restorer::blob::Stop(cryo::restorer::blob::RestoreThread(*arena, *spec));
}
