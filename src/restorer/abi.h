// The contract between cryo (host) and the freestanding restorer blob: plain structs with offsets,
// no pointers into cryo's memory, no libc types. Host and blob both include only this header.
#pragma once

#include <stdint.h>

namespace cryo::restorer {

inline constexpr uint64_t kArenaMagic = 0x414e5241'4f595243ull;  // "CRYOARNA" little-endian
inline constexpr uint32_t kAbiVersion = 2;

// Blob layout: offset 0 is the entry (a jump), offset kSyscallGadgetOffset holds the two
// instructions "syscall; int3" that the host uses for remote syscalls once the blob has stopped,
// the last being the munmap of the keep region. That munmap removes the int3 too: the host must
// stop at the syscall exit (PTRACE_SYSCALL) for it, or it sees SIGSEGV at gadget + 2.
inline constexpr uint64_t kSyscallGadgetOffset = 8;

// The blob's madvise bits reuse model::VmaFlag values; repeated here so the blob needs no model.
enum MadvBits : uint32_t {
  kMadvGrowsDown = 1u << 0,  // ignored by the blob: the host premaps with MAP_GROWSDOWN
  kMadvDontFork = 1u << 1,
  kMadvDontDump = 1u << 2,
  kMadvWipeOnFork = 1u << 3,
  kMadvHugePage = 1u << 4,
  kMadvNoHugePage = 1u << 5,
  kMadvMergeable = 1u << 6,
  kMadvLocked = 1u << 7,
  // Not a model flag: registered (MISSING mode) with Arena::lazy_uffd once at its final address,
  // so that the lazy-pages daemon serves its pages (restore/lazy.h). Registering after the move
  // spares the move a UFFD_EVENT_REMAP, which would wait until the daemon has read it.
  kMadvLazy = 1u << 8,
};

// One mapping to move from its premap place to its final address.
struct VmaMove {
  uint64_t premap;  // current address (inside the keep region)
  uint64_t start;   // final address
  uint64_t length;  // bytes, page-aligned
  uint32_t prot;    // final PROT_* bits, applied after the move
  uint32_t madv;    // MadvBits to re-apply at the final address
};

// One thread besides the one running the blob (the leader): created by the blob with clone3 and
// this exact TID, it sets up its own per-thread state and stops with int3 like the leader.
struct ThreadSpec {
  int32_t tid;
  uint32_t altstack_flags;  // as Arena::altstack_flags
  uint64_t stack_top;       // top of its blob stack (kThreadStackSize bytes) in the keep region
  uint64_t altstack_sp;
  uint64_t altstack_size;
  uint64_t rseq;  // 0 = none
  uint32_t rseq_len;
  uint32_t rseq_sig;
  uint64_t robust_list;  // as Arena::robust_list
  uint64_t robust_list_len;
  uint64_t clear_child_tid;
  char comm[16];  // PR_SET_NAME, NUL-terminated
  // Its private pending signals: Arena signals [signal_first, signal_first + signal_count).
  uint32_t signal_first;
  uint32_t signal_count;
};

// Bytes of blob stack per created thread; ThreadSpec::stack_top is 16-aligned.
inline constexpr uint64_t kThreadStackSize = 16 * 1024;

// A signal to queue on one thread's private queue with rt_tgsigqueueinfo, by that thread itself:
// the kernel lets only the target thread queue a siginfo with si_code >= 0 or SI_TKILL.
struct QueuedSignal {
  int32_t tid;
  int32_t signo;
  uint8_t info[128];  // siginfo_t as dumped
};

struct RlimitEntry {
  uint64_t cur;
  uint64_t max;
};

inline constexpr uint32_t kMaxRlimits = 16;
inline constexpr uint32_t kMaxAuxv = 128;  // u64 words

// Everything the blob needs. Lives in the keep region; variable-length arrays follow the struct
// at the given byte offsets from the start of the Arena.
struct Arena {
  uint64_t magic;
  uint32_t abi_version;
  uint32_t arena_size;  // bytes, including the arrays that follow

  // [keep_start, keep_end) holds the blob, this arena, the blob stack and the premap area. The
  // blob unmaps every other user mapping of the process (cryo's code, heap, stack, vdso).
  uint64_t keep_start;
  uint64_t keep_end;
  uint64_t task_size;  // top of the user address space to unmap up to

  // Start of [vvar] in the image; 0 if the image had no vdso. Mapped with ARCH_MAP_VDSO_64.
  uint64_t vdso_vvar_start;

  uint32_t vma_count;
  uint32_t vma_offset;  // VmaMove[vma_count], sorted by start

  // mm fields for PR_SET_MM_MAP (struct prctl_mm_map without the pointer).
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint32_t auxv_words;   // number of u64 words of auxv
  uint32_t auxv_offset;  // u64[auxv_words]
  int32_t exe_fd;        // fd of the executable, for PR_SET_MM_MAP; closed by the blob.
  int32_t lazy_uffd;     // -1, or the userfaultfd for kMadvLazy moves (in close_fds too)
                         // < 0: keep the current exe link. Must not also be in close_fds.

  uint32_t rlimit_count;  // <= kMaxRlimits; applied with prlimit64(0, i, ...)
  RlimitEntry rlimits[kMaxRlimits];

  uint64_t altstack_sp;
  uint64_t altstack_size;
  uint32_t altstack_flags;  // SS_DISABLE or 0 (SS_AUTODISARM kept as given)

  // Per-task pointers the kernel writes to behind the process's back. The cryo thread running
  // the blob inherited glibc's values, which point into cryo's TLS: after the unmap the kernel
  // would write into (or SIGSEGV on) whatever lies there, so the blob always replaces them.
  // host_rseq: the rseq area registered for the thread entering the blob (glibc registers one
  // per thread; fork and clone3 inherit it). Unregistered before anything is unmapped, because
  // the kernel SIGSEGVs a task whose registered rseq area is unmapped at its next preemption.
  // 0 = none registered. HostRseq() in blob.h fills these.
  uint64_t host_rseq;
  uint32_t host_rseq_len;
  uint32_t host_rseq_sig;
  // The target's rseq registration, re-registered after the memory is in place; 0 = none.
  uint64_t rseq;
  uint32_t rseq_len;
  uint32_t rseq_sig;
  // set_robust_list(robust_list, robust_list_len) and set_tid_address(clear_child_tid), always
  // applied (0 / 0 clears them). robust_list_len must be the kernel's 24 unless robust_list is 0.
  uint64_t robust_list;
  uint64_t robust_list_len;
  uint64_t clear_child_tid;

  // Credentials, applied after every step that needs cryo's privileges: groups, gids, bounding
  // set, uids (keeping caps), then capability sets. See docs/restore.md for the order.
  uint32_t uids[4];  // real, effective, saved, fs
  uint32_t gids[4];
  uint32_t group_count;
  uint32_t groups_offset;  // uint32_t[group_count]
  uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
  uint32_t cap_last;  // highest capability number the kernel knows

  char comm[16];  // PR_SET_NAME, NUL-terminated

  uint32_t close_fd_count;
  uint32_t close_fds_offset;  // int32_t[close_fd_count]: cryo's own fds, closed last

  // The other threads, created after the rlimits and before the leader's own per-thread state
  // and credentials (clone3 with set_tid needs cryo's privileges; each thread applies the
  // credentials itself, as they are per task).
  uint32_t thread_count;
  uint32_t threads_offset;  // ThreadSpec[thread_count]
  // Private pending signals of those threads, each queued by its own thread.
  uint32_t signal_count;
  uint32_t signals_offset;  // QueuedSignal[signal_count]
};

// Every array offset above is from the start of the Arena, aligned for its element type, and
// inside arena_size; the blob checks all of it (kBadArena) before it changes anything.

// The blob ends every run with int3 (SIGTRAP). The host reads rdi = Step reached (kDone on
// success), rsi = the negative errno of the failed syscall, rdx = the index within the step
// (e.g. which VmaMove), rcx = a detail (see each step). If the host resumes the task without
// moving rip, it traps again: the blob never runs past its final int3.
//   kBadArena   rdx = ArenaCheck that failed, rcx = VmaMove index for kCheckVma.
//   kRseq       rdx = 0 unregistering host_rseq, 1 registering the target's rseq.
//   kUnmap      rdx = 0 for [0, keep_start), 1 for [keep_end, task_size).
//   kVdso       rdx = 0 ARCH_MAP_VDSO_64 failed, 1 it mapped the vdso elsewhere than asked.
//   kMremap, kMprotect, kMadvise   rdx = VmaMove index; kMadvise: rcx = the MadvBits bit
//               (kMadvLazy: UFFDIO_REGISTER failed).
//   kMmMap      rdx = 0 for PR_SET_MM_MAP, 1 for closing exe_fd.
//   kRlimit     rdx = the resource.
//   kCreds      rdx = CredStep, rcx = the capability for kCredBounding / kCredAmbient.
//   kCloseFds   rdx = index into close_fds (only EBADF is an error: close always frees the fd).
//   kThreads    rdx = ThreadSpec index; rcx = the TID clone3 returned if it was not the one asked.
//   kThreadSignal  rdx = QueuedSignal index (reported by the thread it belongs to).
// A created thread reports the same way at its own int3 (kAltstack, kRseq, kRobustList, kCreds,
// kComm apply to it), with kDone on success.
enum Step : uint64_t {
  kDone = 0,
  kBadArena = 1,
  kUnmap = 2,
  kVdso = 3,
  kMremap = 4,
  kMprotect = 5,
  kMadvise = 6,
  kMmMap = 7,
  kRlimit = 8,
  kAltstack = 9,
  kCreds = 10,
  kComm = 11,
  kCloseFds = 12,
  kRseq = 13,
  kRobustList = 14,
  kThreads = 15,
  kThreadSignal = 16,
};

// kBadArena details (rdx).
enum ArenaCheck : uint64_t {
  kCheckMagic = 0,
  kCheckVersion = 1,
  kCheckSize = 2,        // arena_size smaller than the struct, or the Arena not in the keep region
  kCheckArrays = 3,      // an array offset/count out of bounds or misaligned, or a count too big
  kCheckKeepRegion = 4,  // keep_start/keep_end/task_size not page-aligned or not ordered
  kCheckVma = 5,         // a VmaMove not page-aligned, empty, above task_size or in the keep region
  kCheckVdso = 6,        // vdso_vvar_start not page-aligned or inside the keep region
  kCheckCapLast = 7,     // cap_last > 63
  kCheckThread = 8,      // a ThreadSpec's stack outside the keep region or misaligned, tid <= 0,
                         // or its signals outside the signal array
};

// kCreds details (rdx), in the order the blob applies them.
enum CredStep : uint64_t {
  kCredGroups = 0,       // setgroups
  kCredGid = 1,          // setresgid
  kCredFsGid = 2,        // setfsgid (checked by reading it back)
  kCredInheritable = 3,  // capset raising inheritable before the bounding set shrinks
  kCredBounding = 4,     // PR_CAPBSET_DROP, rcx = capability
  kCredKeepCaps = 5,     // PR_SET_KEEPCAPS
  kCredUid = 6,          // setresuid
  kCredFsUid = 7,        // setfsuid (checked by reading it back)
  kCredCaps = 8,         // capget / capset of eff/prm/inh
  kCredAmbient = 9,      // PR_CAP_AMBIENT, rcx = capability
  kCredDumpable = 10,    // PR_SET_DUMPABLE
};

}  // namespace cryo::restorer
