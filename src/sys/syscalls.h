// Thin wrappers of the syscalls cryo needs beyond plain POSIX, each returning Result with errno
// and what was attempted. Raw syscall() where glibc 2.36 has no wrapper.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "base/unique_fd.h"

namespace cryo::sys {

// pidfd_open(2): a pidfd for process `pid` (a thread group leader). ESRCH when it is gone.
Result<UniqueFd> PidfdOpen(pid_t pid, unsigned flags = 0);

// pidfd_getfd(2): a duplicate, in our process and close-on-exec, of fd `fd` of the process behind
// `pidfd`. Needs ptrace-attach rights over it (EPERM otherwise); EBADF when it has no such fd.
Result<UniqueFd> PidfdGetfd(int pidfd, int fd);

// clone3(2) like fork() (no CLONE_VM, no new stack) but with chosen pids: `tids[0]` is the pid in
// the innermost pid namespace the child will be in, tids[1] in its parent namespace, and so on
// (the kernel's set_tid order). The child gets SIGCHLD as exit signal. Returns the child's pid in
// the parent and 0 in the child. EEXIST: a pid is taken; EPERM: no CAP_CHECKPOINT_RESTORE or
// CAP_SYS_ADMIN over the namespace.
// glibc did not make this child, so its thread descriptor keeps the caller's tid. Measured with
// glibc 2.36 (and tested in syscalls_test): malloc, stdio, error-checking mutexes and raise()
// (which asks the kernel for the tid) work in the child. Call it from a single-threaded process:
// a lock another thread held at the clone stays held in the child forever.
Result<pid_t> Clone3WithTids(std::span<const pid_t> tids, uint64_t flags);
// The same with one pid (the caller's namespace level). tid 0 means "any pid" (plain clone3).
Result<pid_t> Clone3WithTid(pid_t tid, uint64_t flags);

// process_vm_readv(2) as is: returns the bytes read, which may be short when a remote range
// crosses into unmapped memory. At most IOV_MAX (1024) iovecs on each side.
Result<size_t> ProcessVmReadv(pid_t pid, std::span<const iovec> local,
                              std::span<const iovec> remote);
// One remote range into `out`; short when the range runs into unmapped memory.
Result<size_t> ProcessVmRead(pid_t pid, RemoteAddr addr, std::span<std::byte> out);

// tgkill(2): signal thread `tid` of thread group `tgid`. ESRCH when it is gone.
Status Tgkill(pid_t tgid, pid_t tid, int sig);

// prlimit(2) read and write of one resource (RLIMIT_*) of process `pid` (0 = ourselves). Raising
// a hard limit needs CAP_SYS_RESOURCE (EPERM otherwise: this VM's root lacks it).
Result<rlimit> Prlimit(pid_t pid, int resource);
Status SetPrlimit(pid_t pid, int resource, const rlimit& limit);

// gettid(2). Cannot fail.
pid_t Gettid();

// sendmsg(2) of `bytes` with `fds` passed in one SCM_RIGHTS message (none if empty); `flags` as
// for sendmsg (MSG_NOSIGNAL is added). Returns the bytes sent.
Result<size_t> SendWithFds(int sock, std::span<const std::byte> bytes, std::span<const int> fds,
                           int flags = 0);

// One message read with recvmsg(2) into `buf`, with the fds it carried (close-on-exec, room for
// `max_fds`). `truncated`: the data or the fds did not fit (MSG_TRUNC, MSG_CTRUNC; the kernel
// closes the fds beyond). A failure keeps errno (EAGAIN with MSG_DONTWAIT and nothing queued).
struct Received {
  size_t bytes = 0;
  std::vector<UniqueFd> fds;
  bool truncated = false;
};
Result<Received> RecvWithFds(int sock, std::span<std::byte> buf, size_t max_fds, int flags = 0);

}  // namespace cryo::sys
