// Plain value types for the captured state of a process tree. No live handles, no protobuf:
// dump produces these, image/ serialises them, restore plans from them.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/inet.h"
#include "model/shmem.h"
#include "model/task_control.h"
#include "model/tty.h"

namespace cryo::model {

// What a mapping is, as far as restore is concerned.
enum class VmaKind : uint32_t {
  kAnonPrivate = 0,  // MAP_PRIVATE|MAP_ANONYMOUS, including [heap] and [stack]
  kFilePrivate = 1,  // MAP_PRIVATE of a file: unwritten pages come from the file
  kFileShared = 2,   // MAP_SHARED of a file: all content lives in the file
  kAnonShared = 3,   // MAP_SHARED|MAP_ANONYMOUS (shmem)
  kVdso = 4,         // [vdso]: re-created from the running kernel
  kVvar = 5,         // [vvar], [vvar_vclock]: come with the vdso
  kSysvShm = 6,      // an attached System V shared memory segment (shmem_id names it)
};

// Extra per-mapping state from smaps VmFlags that restore re-applies.
enum VmaFlag : uint32_t {
  kVmaGrowsDown = 1u << 0,       // gd
  kVmaDontFork = 1u << 1,        // dc (MADV_DONTFORK)
  kVmaDontDump = 1u << 2,        // dd (MADV_DONTDUMP)
  kVmaWipeOnFork = 1u << 3,      // wf (MADV_WIPEONFORK)
  kVmaHugePage = 1u << 4,        // hg (MADV_HUGEPAGE)
  kVmaNoHugePage = 1u << 5,      // nh (MADV_NOHUGEPAGE)
  kVmaMergeable = 1u << 6,       // mg (MADV_MERGEABLE)
  kVmaLocked = 1u << 7,          // lo (mlock)
  kVmaUffdRegistered = 1u << 8,  // um/uw: the target registered it with userfaultfd
  // The modes of a registration with the process's own userfaultfd (its FdType::kUserfaultfd),
  // which restore registers again: um, uw, ui.
  kVmaUffdMissing = 1u << 9,
  kVmaUffdWp = 1u << 10,
  kVmaUffdMinor = 1u << 11,
};

// Identity of a file at dump time, to refuse restoring over a file that changed.
struct FileId {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  auto operator<=>(const FileId&) const = default;
};

inline FileId FileIdOf(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_size),
          st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec};
}

struct Vma {
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t prot = 0;   // PROT_READ | PROT_WRITE | PROT_EXEC
  uint32_t flags = 0;  // VmaFlag bits
  VmaKind kind = VmaKind::kAnonPrivate;
  uint64_t pgoff = 0;  // file offset in bytes, for file mappings
  std::string name;    // file path, or [heap], [stack], [anon:foo], ...
  FileId file;         // for file mappings
  // The shared-memory object (ShmemTable) mapped here instead of `name`, 0 for none: always
  // for kAnonShared and kSysvShm, for file mappings of memfds and unlinked tmpfs files.
  uint64_t shmem_id = 0;
  uint64_t length() const { return end - start; }
  bool operator==(const Vma&) const = default;
};

// Whether restore can give the child's private vma `c` its pages through fork from the parent's
// vma `p` (docs/restore.md, "Copy-on-write"): the same kind of private mapping, `c` inside `p`,
// the same file at the same offsets, the same growth direction.
inline bool CanInheritFrom(const Vma& c, const Vma& p) {
  bool priv = c.kind == VmaKind::kAnonPrivate || c.kind == VmaKind::kFilePrivate;
  if (!priv || c.kind != p.kind || c.shmem_id != 0 || p.shmem_id != 0) return false;
  if (c.start < p.start || c.end > p.end) return false;
  if ((c.flags & kVmaGrowsDown) != (p.flags & kVmaGrowsDown)) return false;
  if (c.kind == VmaKind::kFilePrivate &&
      (c.name != p.name || c.file != p.file || c.pgoff != p.pgoff + (c.start - p.start))) {
    return false;
  }
  return true;
}

// The vma of `parent` (sorted, disjoint) that `c` can inherit its pages from, or nullptr.
inline const Vma* InheritSource(const std::vector<Vma>& parent, const Vma& c) {
  for (const Vma& p : parent) {
    if (p.end > c.start) return p.start <= c.start && CanInheritFrom(c, p) ? &p : nullptr;
  }
  return nullptr;
}

// Whether lazy restore can deliver pages of `v` after the process runs (userfaultfd MISSING mode
// serves private anonymous memory only; locked memory and the process's own userfaultfd areas
// are filled before it runs).
inline bool LazyEligible(const Vma& v) {
  constexpr uint32_t kNotLazy =
      kVmaLocked | kVmaUffdMissing | kVmaUffdWp | kVmaUffdMinor | kVmaUffdRegistered;
  return v.kind == VmaKind::kAnonPrivate && v.shmem_id == 0 && !(v.flags & kNotLazy);
}

// Where a run of pages' content is. Flags are a bitset of PageFlag.
enum PageFlag : uint32_t {
  kPagePresent = 1u << 0,   // content is in this image's pages file at `offset`
  kPageZero = 1u << 1,      // all zero: nothing stored
  kPageInParent = 1u << 2,  // content is in the parent image chain
  kPageLazy = 1u << 3,      // delivered after resume by the lazy-pages daemon
  // The very page the tree parent has at this address (shared copy-on-write since a fork):
  // nothing stored, restore forks the process from its parent with the page in place.
  kPageInherited = 1u << 4,
};

struct PageRun {
  uint64_t vaddr = 0;
  uint64_t nr_pages = 0;
  uint64_t offset = 0;  // byte offset into the pages file (kPagePresent only)
  uint32_t flags = 0;
  bool operator==(const PageRun&) const = default;
};

// How a pages file holds its content (docs/image-format.md §6). Uncompressed: page content at the
// runs' offsets. Compressed: the content (raw_size bytes, which the runs' offsets address) is cut
// into blocks of block_size raw bytes (the last may be shorter), each stored on its own.
enum class PageCodec : uint32_t { kNone = 0, kZstd = 1, kLz4 = 2 };

struct PageBlock {
  uint64_t offset = 0;  // where the block is stored in the pages file
  uint32_t size = 0;    // stored bytes: one zstd or lz4 frame
  bool operator==(const PageBlock&) const = default;
};

struct PagesCompression {
  PageCodec codec = PageCodec::kNone;
  uint64_t block_size = 0;
  uint64_t raw_size = 0;
  std::vector<PageBlock> blocks;  // block i holds raw bytes [i * block_size, ...)
  bool operator==(const PagesCompression&) const = default;
};

// x86-64 general registers, the layout of struct user_regs_struct.
struct GpRegs {
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip,
      cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs;
  bool operator==(const GpRegs&) const = default;
};

struct SigInfo {
  using raw_type = uint8_t[128];
  std::array<uint8_t, 128> raw{};  // siginfo_t as the kernel gave it
  bool operator==(const SigInfo&) const = default;
};

struct SigAction {
  uint64_t handler = 0;  // SIG_DFL = 0, SIG_IGN = 1, else an address
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
  bool operator==(const SigAction&) const = default;
};

struct AltStack {
  uint64_t sp = 0;
  uint32_t flags = 0;
  uint64_t size = 0;
  bool operator==(const AltStack&) const = default;
};

struct Thread {
  pid_t tid = 0;
  GpRegs regs{};
  std::string xstate;  // NT_X86_XSTATE regset as read by PTRACE_GETREGSET
  uint64_t blocked = 0;
  std::vector<SigInfo> pending;  // per-thread queue
  AltStack altstack;
  // Per-thread pointers the kernel keeps: rseq registration (0 = none), robust futex list head
  // (0 = none; its length is the kernel's 24 otherwise) and the clear_child_tid address.
  uint64_t rseq = 0;
  uint32_t rseq_len = 0;
  uint32_t rseq_sig = 0;
  uint64_t robust_list = 0;
  uint64_t robust_list_len = 0;
  uint64_t clear_child_tid = 0;
  std::string comm;  // thread name (/proc/PID/task/TID/comm), at most 15 bytes
  bool operator==(const Thread&) const = default;
};

struct Creds {
  std::array<uint32_t, 4> uids{};  // real, effective, saved, fs
  std::array<uint32_t, 4> gids{};
  std::vector<uint32_t> groups;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  bool operator==(const Creds&) const = default;
};

struct Rlimit {
  uint64_t cur = 0;
  uint64_t max = 0;
  bool operator==(const Rlimit&) const = default;
};

enum class FdType : uint32_t {
  kRegular = 0,      // reopened by path, with flags and offset
  kDirectory = 1,    // reopened by path
  kCharDevice = 2,   // /dev/null and friends, reopened by path
  kInherited = 3,    // stdio of the caller (pipe, tty, socket): restore gives it cryo's own
  kPipe = 4,         // one end of an anonymous pipe whose both ends are in the process
  kFifo = 5,         // a named FIFO, reopened by path
  kEventfd = 6,      // counter and EFD_SEMAPHORE
  kSignalfd = 7,     // signal mask
  kTimerfd = 8,      // clock, remaining time and interval
  kEpoll = 9,        // interest list, re-added once every other fd is in place
  kUnixPair = 10,    // a connected unix socket whose peer is in the process (a socketpair)
  kUnixListen = 11,  // a listening unix socket, bound to `path`, re-bound at restore
  kInotify = 12,     // watches, re-added by path with their watch descriptors
  // A unix socket neither connected nor listening (a datagram socket that sends with sendto, or
  // receives on its bound name): re-created, and re-bound to `path` when it has a name.
  kUnixUnconnected = 14,
  kShmem = 40,  // a memfd or unlinked tmpfs file: the shared-memory object shmem_id
  kInet = 20,   // a TCP or UDP socket, IPv4 or IPv6 (model/inet.h)
  // Terminals (dump/fd_tty.cc, restore/fd_tty.cc); numbered apart from the kinds above.
  kPtyMaster = 60,  // /dev/ptmx: a new pair at restore, state in Fd::tty
  kPtySlave = 61,   // /dev/pts/N whose master (same Fd::tty.index) is in the process
  kCallerTty = 62,  // --shell-job: the controlling terminal, the restoring cryo's at restore
  // The process's own userfaultfd: O_NONBLOCK in flags, features in uffd_features, kUffdApiDone;
  // the ranges registered with it are the vmas with kVmaUffdMissing/Wp/Minor.
  kUserfaultfd = 70,
};

// One inotify watch: its descriptor, event mask and the path of the watched inode at dump.
struct InotifyWatch {
  int32_t wd = 0;
  uint32_t mask = 0;
  std::string path;
  bool operator==(const InotifyWatch&) const = default;
};

// One file in an epoll instance's interest list, as registered through fd number `fd`.
struct EpollTarget {
  int32_t fd = -1;
  uint32_t events = 0;  // EPOLLIN, ..., EPOLLET, EPOLLONESHOT as epoll_ctl takes them
  uint64_t data = 0;
  uint64_t ino = 0;  // the target's inode at dump, to tell a closed or reused fd number
  bool operator==(const EpollTarget&) const = default;
};

enum class LockKind : uint32_t { kFlock = 0, kPosix = 1, kOfd = 2 };

// A lock the process holds on the file of an fd: flock(2), fcntl(2) record lock or OFD lock.
struct FileLock {
  LockKind kind = LockKind::kFlock;
  bool write = false;  // exclusive / write lock, else shared / read
  uint64_t start = 0;
  uint64_t end = UINT64_MAX;  // last byte, inclusive; UINT64_MAX: to the end of the file
  bool operator==(const FileLock&) const = default;
};

// Fd::kind_flags bits.
enum FdKindFlag : uint32_t {
  kEventfdSemaphore = 1u << 0,  // EFD_SEMAPHORE
  kTtyForeground = 1u << 8,     // kCallerTty: the process's group was the terminal's foreground
  kUffdApiDone = 1u << 9,       // kUserfaultfd: UFFDIO_API was done (with uffd_features)
};

struct Fd {
  int fd = -1;
  FdType type = FdType::kRegular;
  std::string path;    // for kUnixListen: the bound name (abstract names start with '\0')
  uint32_t flags = 0;  // open flags: O_ACCMODE, O_APPEND, O_NONBLOCK, O_DIRECT, ...
  bool cloexec = false;
  uint64_t pos = 0;
  uint64_t rdev = 0;  // for character devices
  FileId file;        // for regular files
  // The lowest fd of this process that refers to the same open file description (a dup: they
  // share offset and flags), or -1. Restore dups that fd instead of opening the file again.
  int shares_with = -1;
  // Pipes and FIFOs: the inode (the ends of one pipe share it), the pipe's capacity, and the
  // bytes buffered at dump time, kept on the first fd of the pipe (empty on the others).
  uint64_t object_id = 0;
  uint32_t pipe_size = 0;
  std::string data;
  // eventfd: the counter; timerfd: expirations not yet read; listening socket: the backlog.
  uint64_t counter = 0;
  uint64_t signal_mask = 0;  // signalfd: bit n-1 is signal n
  int32_t clockid = 0;       // timerfd
  uint64_t value_ns = 0;     // timerfd: time left until it fires, 0 when disarmed
  uint64_t interval_ns = 0;  // timerfd
  uint32_t kind_flags = 0;   // FdKindFlag bits
  std::vector<EpollTarget> epoll_targets;
  std::vector<FileLock> locks;
  // Unix sockets: the peer's inode (object_id is the socket's own), SOCK_STREAM / SOCK_DGRAM /
  // SOCK_SEQPACKET, and the receive queue at dump, one entry per datagram or record (a stream's
  // bytes as one entry).
  uint64_t peer_id = 0;
  int32_t sock_type = 0;
  std::vector<std::string> messages;
  std::vector<InotifyWatch> watches;  // inotify, sorted by wd
  uint64_t shmem_id = 0;              // kShmem: the object in the tree's ShmemTable
  InetSocket inet;                    // kInet
  TtyState tty;                       // kPtyMaster, kPtySlave (index only), kCallerTty
  uint64_t uffd_features = 0;         // kUserfaultfd: the UFFD_FEATURE_* bits of UFFDIO_API
  // > 0: the tree-wide id of an open file description that restore creates once, in the cryo
  // parent, and hands to every fd carrying the id: a description used by several processes of
  // the tree (an offset they share), or one end of a pipe or socketpair whose ends are in
  // different processes. 0: the process's own.
  uint32_t shared_file = 0;
  bool operator==(const Fd&) const = default;
};

// mm fields that PR_SET_MM_MAP restores.
struct MmInfo {
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  uint64_t start_brk = 0, brk = 0, start_stack = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::vector<uint64_t> auxv;
  std::string exe_path;
  FileId exe_file;
  uint64_t vdso_hash = 0;  // FNV-1a 64 of the [vdso] text; 0 if the process had none
  bool operator==(const MmInfo&) const = default;
};

inline constexpr int kNumSignals = 64;
inline constexpr int kNumRlimits = 16;

struct Process {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  // A zombie: only pid, ppid, pgid, sid and its wait status are kept; restore makes it exit
  // again so that its parent can reap it.
  bool zombie = false;
  int32_t exit_status = 0;
  std::string comm;
  bool stopped = false;  // job-control stopped at dump time: restored stopped
  bool no_new_privs = false;
  uint32_t personality = 0;
  uint32_t dumpable = 1;  // PR_GET_DUMPABLE
  uint32_t umask = 022;
  std::string cwd;
  std::string root;
  Creds creds;
  std::vector<Rlimit> rlimits;        // kNumRlimits entries, indexed by RLIMIT_*
  std::vector<SigAction> sigactions;  // kNumSignals entries, index = signo - 1
  std::vector<SigInfo> shared_pending;
  std::vector<Thread> threads;  // threads[0] is the thread group leader
  MmInfo mm;
  std::vector<Vma> vmas;         // sorted by start, non-overlapping
  std::vector<Fd> fds;           // sorted by fd number
  std::vector<PageRun> pagemap;  // sorted by vaddr, inside private vmas
  std::string pages_file;        // file name in the image directory
  TaskControl control;           // timers, pdeathsig, subreaper, seccomp (model/task_control.h)
  // How pages_file stores the content.
  PagesCompression pages_compression;
  bool operator==(const Process&) const = default;
};

struct ProcessTree {
  pid_t root_pid = 0;
  std::vector<Process> processes;  // processes[0] is the root
  ShmemTable shmem;                // shared-memory objects of every process, each once
  bool operator==(const ProcessTree&) const = default;
};

}  // namespace cryo::model
