// The restorer blob's main line: check the arena, drop everything of cryo, put the target's
// memory and per-process state in place, then stop with int3 for the host. Runs with no libc,
// on its own stack inside the keep region; never returns.
#include <asm/prctl.h>
#include <linux/ioctl.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/userfaultfd.h>

#include "restorer/abi.h"
#include "restorer/blob/outcome.h"
#include "restorer/blob/syscall.h"
#include "restorer/blob/thread.h"

namespace cryo::restorer::blob {
namespace {

constexpr uint64_t kPageMask = 4096 - 1;
constexpr long kRseqFlagUnregister = 1;  // RSEQ_FLAG_UNREGISTER

bool PageAligned(uint64_t v) { return (v & kPageMask) == 0; }

// [a, a + alen) and [b, b + blen) intersect. Callers have checked that neither wraps.
bool Overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

template <typename T>
bool ArrayFits(const Arena& a, uint32_t offset, uint64_t count) {
  if (count == 0) return true;
  if (offset % alignof(T) != 0 || offset < sizeof(Arena)) return false;
  return offset <= a.arena_size && count <= (a.arena_size - offset) / sizeof(T);
}

// Everything that can be checked is checked here, before the first irreversible step.
Outcome CheckArena(const Arena& a) {
  auto bad = [](ArenaCheck check, uint64_t detail = 0) {
    return Fail(kBadArena, -22 /* EINVAL */, check, detail);
  };
  if (a.magic != kArenaMagic) return bad(kCheckMagic);
  if (a.abi_version != kAbiVersion) return bad(kCheckVersion);
  const uint64_t self = reinterpret_cast<uint64_t>(&a);
  if (a.arena_size < sizeof(Arena) || self < a.keep_start || self > a.keep_end ||
      a.arena_size > a.keep_end - self) {
    return bad(kCheckSize);
  }
  if (!PageAligned(a.keep_start) || !PageAligned(a.keep_end) || !PageAligned(a.task_size) ||
      a.keep_start >= a.keep_end || a.keep_end > a.task_size) {
    return bad(kCheckKeepRegion);
  }
  if (a.rlimit_count > kMaxRlimits || a.auxv_words > kMaxAuxv ||
      !ArrayFits<VmaMove>(a, a.vma_offset, a.vma_count) ||
      !ArrayFits<uint64_t>(a, a.auxv_offset, a.auxv_words) ||
      !ArrayFits<uint32_t>(a, a.groups_offset, a.group_count) ||
      !ArrayFits<int32_t>(a, a.close_fds_offset, a.close_fd_count)) {
    return bad(kCheckArrays);
  }
  const uint64_t keep_len = a.keep_end - a.keep_start;
  const VmaMove* moves = ArenaArray<VmaMove>(a, a.vma_offset);
  for (uint32_t i = 0; i < a.vma_count; ++i) {
    const VmaMove& m = moves[i];
    if (!PageAligned(m.start) || !PageAligned(m.length) || m.length == 0 || m.start > a.task_size ||
        m.length > a.task_size - m.start || Overlaps(m.start, m.length, a.keep_start, keep_len)) {
      return bad(kCheckVma, i);
    }
  }
  // The vdso's size depends on the kernel; only its start can be checked here. The host must
  // leave room for the whole [vvar]..[vdso] block below keep_start or above keep_end.
  if (a.vdso_vvar_start != 0 &&
      (!PageAligned(a.vdso_vvar_start) || Overlaps(a.vdso_vvar_start, 1, a.keep_start, keep_len))) {
    return bad(kCheckVdso);
  }
  if (a.cap_last > 63) return bad(kCheckCapLast);
  if (!ArrayFits<ThreadSpec>(a, a.threads_offset, a.thread_count) ||
      !ArrayFits<QueuedSignal>(a, a.signals_offset, a.signal_count)) {
    return bad(kCheckArrays);
  }
  const ThreadSpec* threads = ArenaArray<ThreadSpec>(a, a.threads_offset);
  for (uint32_t i = 0; i < a.thread_count; ++i) {
    const ThreadSpec& t = threads[i];
    if (t.tid <= 0 || (t.stack_top & 15) != 0 || t.stack_top < a.keep_start + kThreadStackSize ||
        t.stack_top > a.keep_end || t.signal_first > a.signal_count ||
        t.signal_count > a.signal_count - t.signal_first) {
      return bad(kCheckThread, i);
    }
  }
  return {};
}

Outcome UnregisterHostRseq(const Arena& a) {
  if (a.host_rseq == 0) return {};
  long r = Syscall(__NR_rseq, static_cast<long>(a.host_rseq), a.host_rseq_len, kRseqFlagUnregister,
                   a.host_rseq_sig);
  if (IsError(r)) return Fail(kRseq, r, 0);
  return {};
}

// Removes every mapping outside the keep region: cryo's code, libraries, heap, stack, vdso.
Outcome UnmapOutsideKeep(const Arena& a) {
  if (a.keep_start > 0) {
    long r = Syscall(__NR_munmap, 0, static_cast<long>(a.keep_start));
    if (IsError(r)) return Fail(kUnmap, r, 0);
  }
  if (a.task_size > a.keep_end) {
    long r = Syscall(__NR_munmap, static_cast<long>(a.keep_end),
                     static_cast<long>(a.task_size - a.keep_end));
    if (IsError(r)) return Fail(kUnmap, r, 1);
  }
  return {};
}

// ARCH_MAP_VDSO_64 maps the running kernel's [vvar]/[vvar_vclock]/[vdso] block with its lowest
// page at the hint. It refuses (EEXIST) while any vdso is mapped, hence after the unmap. Success
// is any value outside -4095..-1: 6.18 returns 0x2000, neither 0 nor an address. The address is
// only a hint (no MAP_FIXED inside), so the result is checked: the hint page must be mapped now,
// and nothing else can map it since everything outside the keep region is gone.
Outcome MapVdso(const Arena& a) {
  if (a.vdso_vvar_start == 0) return {};
  long r = Syscall(__NR_arch_prctl, ARCH_MAP_VDSO_64, static_cast<long>(a.vdso_vvar_start));
  if (IsError(r)) return Fail(kVdso, r, 0);
  unsigned char resident;
  r = Syscall(__NR_mincore, static_cast<long>(a.vdso_vvar_start), 4096, Arg(&resident));
  if (IsError(r)) return Fail(kVdso, r, 1);  // -ENOMEM: the kernel put it elsewhere
  return {};
}

struct Advice {
  uint32_t bit;
  long advice;
};

constexpr Advice kAdvices[] = {
    {kMadvDontFork, MADV_DONTFORK},     {kMadvDontDump, MADV_DONTDUMP},
    {kMadvWipeOnFork, MADV_WIPEONFORK}, {kMadvHugePage, MADV_HUGEPAGE},
    {kMadvNoHugePage, MADV_NOHUGEPAGE}, {kMadvMergeable, MADV_MERGEABLE},
};

Outcome ApplyAdvice(const VmaMove& m, uint64_t index) {
  for (const Advice& adv : kAdvices) {
    if ((m.madv & adv.bit) == 0) continue;
    long r =
        Syscall(__NR_madvise, static_cast<long>(m.start), static_cast<long>(m.length), adv.advice);
    // MADV_MERGEABLE fails with EINVAL when the kernel has no KSM; the target lived on another
    // kernel then, and the flag only ever was a hint.
    if (IsError(r) && !(adv.bit == kMadvMergeable && r == -22 /* EINVAL */)) {
      return Fail(kMadvise, r, index, adv.bit);
    }
  }
  if (m.madv & kMadvLocked) {
    long r = Syscall(__NR_mlock, static_cast<long>(m.start), static_cast<long>(m.length));
    if (IsError(r)) return Fail(kMadvise, r, index, kMadvLocked);
  }
  return {};
}

// Each premapped area is moved whole to its final address; MREMAP_FIXED replaces whatever is
// there (nothing, after the unmap). The premap is writable for filling; the final protection is
// applied only now.
Outcome MoveVmas(const Arena& a) {
  const VmaMove* moves = ArenaArray<VmaMove>(a, a.vma_offset);
  for (uint32_t i = 0; i < a.vma_count; ++i) {
    const VmaMove& m = moves[i];
    long r = Syscall(__NR_mremap, static_cast<long>(m.premap), static_cast<long>(m.length),
                     static_cast<long>(m.length), MREMAP_MAYMOVE | MREMAP_FIXED,
                     static_cast<long>(m.start));
    if (IsError(r)) return Fail(kMremap, r, i);
    r = Syscall(__NR_mprotect, static_cast<long>(m.start), static_cast<long>(m.length), m.prot);
    if (IsError(r)) return Fail(kMprotect, r, i);
    if (Outcome o = ApplyAdvice(m, i); !o.ok()) return o;
    if (m.madv & kMadvLazy) {
      uffdio_register reg{};
      reg.range.start = m.start;
      reg.range.len = m.length;
      reg.mode = UFFDIO_REGISTER_MODE_MISSING;
      r = Syscall(__NR_ioctl, a.lazy_uffd, static_cast<long>(UFFDIO_REGISTER), Arg(&reg));
      if (IsError(r)) return Fail(kMadvise, r, i, kMadvLazy);
    }
  }
  return {};
}

Outcome SetMm(const Arena& a) {
  prctl_mm_map map;
  map.start_code = a.start_code;
  map.end_code = a.end_code;
  map.start_data = a.start_data;
  map.end_data = a.end_data;
  map.start_brk = a.start_brk;
  map.brk = a.brk;
  map.start_stack = a.start_stack;
  map.arg_start = a.arg_start;
  map.arg_end = a.arg_end;
  map.env_start = a.env_start;
  map.env_end = a.env_end;
  // auxv_size 0 keeps the current auxv.
  map.auxv = a.auxv_words ? const_cast<__u64*>(ArenaArray<__u64>(a, a.auxv_offset)) : nullptr;
  map.auxv_size = a.auxv_words * sizeof(uint64_t);
  map.exe_fd = a.exe_fd >= 0 ? static_cast<uint32_t>(a.exe_fd) : ~0u;
  long r = Syscall(__NR_prctl, PR_SET_MM, PR_SET_MM_MAP, Arg(&map), sizeof map);
  if (IsError(r)) return Fail(kMmMap, r, 0);
  if (a.exe_fd >= 0) {
    r = Syscall(__NR_close, a.exe_fd);
    if (r == -9 /* EBADF */) return Fail(kMmMap, r, 1);
  }
  return {};
}

Outcome SetRlimits(const Arena& a) {
  for (uint32_t i = 0; i < a.rlimit_count; ++i) {
    long r = Syscall(__NR_prlimit64, 0, i, Arg(&a.rlimits[i]), 0);
    if (IsError(r)) return Fail(kRlimit, r, i);
  }
  return {};
}

Outcome CloseFds(const Arena& a) {
  const int32_t* fds = ArenaArray<int32_t>(a, a.close_fds_offset);
  for (uint32_t i = 0; i < a.close_fd_count; ++i) {
    long r = Syscall(__NR_close, fds[i]);
    if (r == -9 /* EBADF */) return Fail(kCloseFds, r, i);
  }
  return {};
}

// The leader's per-thread state, in the shape of a created thread's.
ThreadSpec LeaderSpec(const Arena& a) {
  ThreadSpec t;
  t.tid = 0;
  t.altstack_flags = a.altstack_flags;
  t.stack_top = 0;
  t.altstack_sp = a.altstack_sp;
  t.altstack_size = a.altstack_size;
  t.rseq = a.rseq;
  t.rseq_len = a.rseq_len;
  t.rseq_sig = a.rseq_sig;
  t.robust_list = a.robust_list;
  t.robust_list_len = a.robust_list_len;
  t.clear_child_tid = a.clear_child_tid;
  for (int i = 0; i < 16; ++i) t.comm[i] = a.comm[i];
  t.signal_first = 0;
  t.signal_count = 0;  // the leader's were queued before the blob
  return t;
}

Outcome Restore(const Arena& a) {
  // Called one by one rather than through a table of function pointers: a table would need
  // relocations, which the blob must not have.
  if (Outcome o = CheckArena(a); !o.ok()) return o;
  if (Outcome o = UnregisterHostRseq(a); !o.ok()) return o;
  if (Outcome o = UnmapOutsideKeep(a); !o.ok()) return o;
  if (Outcome o = MapVdso(a); !o.ok()) return o;
  if (Outcome o = MoveVmas(a); !o.ok()) return o;
  if (Outcome o = SetMm(a); !o.ok()) return o;
  if (Outcome o = SetRlimits(a); !o.ok()) return o;
  if (Outcome o = CreateThreads(a); !o.ok()) return o;
  const ThreadSpec self = LeaderSpec(a);
  if (Outcome o = SetAltstack(self); !o.ok()) return o;
  if (Outcome o = SetTaskPointers(self); !o.ok()) return o;
  if (Outcome o = ApplyCreds(a); !o.ok()) return o;
  if (Outcome o = SetComm(self); !o.ok()) return o;
  return CloseFds(a);
}

}  // namespace
}  // namespace cryo::restorer::blob

extern "C" [[noreturn]] __attribute__((used)) void cryo_restorer_main(
    const cryo::restorer::Arena* arena) {
  cryo::restorer::blob::Stop(cryo::restorer::blob::Restore(*arena));
}
