// Probes of what freezing and reading a tree needs: ptrace seize, rseq config, process_vm_readv,
// pidfd_open and pidfd_getfd, each tried on a forked child.
#include <fcntl.h>
#include <poll.h>
#include <sys/ptrace.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/io.h"
#include "base/unique_fd.h"
#include "sys/forked_child.h"
#include "sys/probes.h"
#include "sys/syscalls.h"

namespace cryo::sys::probes {
namespace {

using std::chrono_literals::operator""ms;
constexpr auto kChildTimeout = 2000ms;

// Written by the probe child after fork, so the parent's copy differs from the child's.
volatile uint64_t g_probe_word = 0x1111111111111111;
constexpr uint64_t kChildWord = 0xc0ffee0000c0ffee;

// A child that sleeps until killed.
int SleepForever() {
  for (;;) pause();
}

// rseq as glibc registered it for the calling thread (inherited by a forked child), or 0.
uint64_t OwnRseqArea() {
  if (__rseq_size == 0) return 0;
  return reinterpret_cast<uint64_t>(__builtin_thread_pointer()) + __rseq_offset;
}

Feature CheckRseqConfig(pid_t pid) {
  __ptrace_rseq_configuration conf{};
  long n = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof conf, &conf);
  if (n < 0) return Missing("PTRACE_GET_RSEQ_CONFIGURATION: " + ErrnoText(errno));
  uint64_t expected = OwnRseqArea();
  if (conf.rseq_abi_pointer != expected) {
    return Missing(fmt::format("rseq area {:#x}, expected {:#x}", conf.rseq_abi_pointer, expected));
  }
  return Ok(expected ? fmt::format("rseq registered, {} bytes", conf.rseq_abi_size)
                     : "no rseq registered by libc");
}

}  // namespace

void ProbeTracing(KernelFeatures* f) {
  auto child = ForkedChild::Start(SleepForever);
  if (!child) {
    f->ptrace_seize = f->ptrace_rseq_config = Missing(child.error().Message());
    return;
  }
  pid_t pid = child->pid();
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) {
    f->ptrace_seize = f->ptrace_rseq_config = Missing("PTRACE_SEIZE: " + ErrnoText(errno));
    return;
  }
  if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) {
    f->ptrace_seize = f->ptrace_rseq_config = Missing("PTRACE_INTERRUPT: " + ErrnoText(errno));
    return;
  }
  auto status = child->Wait(kChildTimeout, __WALL);
  if (!status) {
    f->ptrace_seize = f->ptrace_rseq_config = Missing(status.error().Message());
    return;
  }
  // A seized tracee stopped by PTRACE_INTERRUPT reports PTRACE_EVENT_STOP in bits 16..23.
  if (!WIFSTOPPED(*status) || (*status >> 16) != PTRACE_EVENT_STOP) {
    f->ptrace_seize = f->ptrace_rseq_config =
        Missing(fmt::format("unexpected stop status {:#x}", *status));
    return;
  }
  f->ptrace_seize = Ok("interrupt stop seen");
  f->ptrace_rseq_config = CheckRseqConfig(pid);
  // The destructor kills the stopped tracee and reaps it.
}

void ProbeProcessAccess(KernelFeatures* f) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    f->process_vm_readv = f->pidfd_open = f->pidfd_getfd = Missing("pipe: " + ErrnoText(errno));
    return;
  }
  UniqueFd ready_r(fds[0]), ready_w(fds[1]);
  int child_fd = ready_w.get();
  auto child = ForkedChild::Start([child_fd] {
    g_probe_word = kChildWord;
    char c = 1;
    if (write(child_fd, &c, 1) != 1) return 1;
    return SleepForever();
  });
  if (!child) {
    f->process_vm_readv = f->pidfd_open = f->pidfd_getfd = Missing(child.error().Message());
    return;
  }
  // We hold the write end too (to compare it with what pidfd_getfd returns), so a child that
  // died early would not give EOF: wait with a timeout.
  pollfd pfd{ready_r.get(), POLLIN, 0};
  char c = 0;
  if (poll(&pfd, 1, static_cast<int>(kChildTimeout.count())) != 1 ||
      read(ready_r.get(), &c, 1) != 1) {
    f->process_vm_readv = f->pidfd_open = f->pidfd_getfd = Missing("probe child never got ready");
    return;
  }
  pid_t pid = child->pid();

  uint64_t word = 0;
  auto n = ProcessVmRead(pid, RemoteAddr(reinterpret_cast<uint64_t>(&g_probe_word)),
                         std::as_writable_bytes(std::span(&word, 1)));
  if (!n) {
    f->process_vm_readv = Missing(n.error().Message());
  } else if (*n != sizeof word || word != kChildWord) {
    f->process_vm_readv = Missing(fmt::format("read {} bytes, {:#x}", *n, word));
  } else {
    f->process_vm_readv = Ok("read a word the child wrote");
  }

  auto pidfd = PidfdOpen(pid);
  if (!pidfd) {
    f->pidfd_open = f->pidfd_getfd = Missing(pidfd.error().Message());
    return;
  }
  // Independent check: the kernel names the pid behind a pidfd in its fdinfo.
  auto info = ReadWholeFile(fmt::format("/proc/self/fdinfo/{}", pidfd->get()));
  if (!info || info->find(fmt::format("\nPid:\t{}\n", pid)) == std::string::npos) {
    f->pidfd_open = Missing("fdinfo of the pidfd does not name the child");
  } else {
    f->pidfd_open = Ok();
  }

  auto got = PidfdGetfd(pidfd->get(), child_fd);
  if (!got) {
    f->pidfd_getfd = Missing(got.error().Message());
    return;
  }
  struct stat ours {
  }, theirs{};
  if (fstat(ready_w.get(), &ours) != 0 || fstat(got->get(), &theirs) != 0 ||
      ours.st_ino != theirs.st_ino || ours.st_dev != theirs.st_dev) {
    f->pidfd_getfd = Missing("the fd taken is not the child's pipe");
    return;
  }
  f->pidfd_getfd = Ok("took the child's pipe fd");
}

}  // namespace cryo::sys::probes
