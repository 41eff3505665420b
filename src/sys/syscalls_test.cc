#include "sys/syscalls.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "base/io.h"
#include "sys/forked_child.h"

namespace cryo::sys {
namespace {

using std::chrono_literals::operator""ms;

int Sleep() {
  for (;;) pause();
}

TEST(Syscalls, PidfdGetfdTakesTheSameFileFromAChild) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  auto child = ForkedChild::Start(Sleep);
  ASSERT_TRUE(child) << child.error().Message();
  auto pidfd = PidfdOpen(child->pid());
  ASSERT_TRUE(pidfd) << pidfd.error().Message();
  auto got = PidfdGetfd(pidfd->get(), w.get());
  ASSERT_TRUE(got) << got.error().Message();
  struct stat a {
  }, b{};
  ASSERT_EQ(fstat(w.get(), &a), 0);
  ASSERT_EQ(fstat(got->get(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_TRUE(fcntl(got->get(), F_GETFD) & FD_CLOEXEC);
  auto missing = PidfdGetfd(pidfd->get(), 999);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sys_errno(), EBADF);
}

TEST(Syscalls, PidfdOpenOfAReapedChildIsEsrch) {
  pid_t pid = 0;
  {
    auto child = ForkedChild::Start([] { return 0; });
    ASSERT_TRUE(child);
    pid = child->pid();
    ASSERT_TRUE(child->WaitExit(2000ms));
  }
  auto pidfd = PidfdOpen(pid);
  ASSERT_FALSE(pidfd);
  EXPECT_EQ(pidfd.error().sys_errno(), ESRCH);
}

// A pid no process has, near the top of the range where pids are rarely handed out.
pid_t FreePid() {
  auto text = ReadWholeFile("/proc/sys/kernel/pid_max");
  int pid_max = text ? std::stoi(*text) : 32768;
  for (pid_t p = pid_max - 20; p > 300; --p) {
    if (access(("/proc/" + std::to_string(p)).c_str(), F_OK) != 0) return p;
  }
  return 0;
}

TEST(Syscalls, Clone3WithTidGivesTheChildThatPid) {
  pid_t want = FreePid();
  ASSERT_NE(want, 0);
  auto pid = Clone3WithTid(want, 0);
  if (pid && *pid == 0) _exit(syscall(SYS_getpid) == want ? 0 : 1);
  ASSERT_TRUE(pid) << pid.error().Message();
  EXPECT_EQ(*pid, want);
  int status = 0;
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// Restore runs cryo code (malloc, stdio, signals) in clone3 children; glibc's idea of the tid is
// stale there.
TEST(Syscalls, Clone3ChildCanUseLibcAndRaiseAtItself) {
  auto pid = Clone3WithTid(0, 0);
  if (pid && *pid == 0) {
    std::string* s = new std::string(10000, 'x');
    std::snprintf(s->data(), s->size(), "%d", 42);
    delete s;
    raise(SIGKILL);
    _exit(3);  // raise() signalled someone else
  }
  ASSERT_TRUE(pid) << pid.error().Message();
  int status = 0;
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
}

TEST(Syscalls, Clone3WithATakenPidIsEexist) {
  auto pid = Clone3WithTid(getpid(), 0);
  if (pid && *pid == 0) _exit(0);
  ASSERT_FALSE(pid);
  EXPECT_EQ(pid.error().sys_errno(), EEXIST);
}

TEST(Syscalls, Clone3RefusesVmSharingFlags) {
  auto pid = Clone3WithTid(0, CLONE_VM);
  ASSERT_FALSE(pid);
  EXPECT_EQ(pid.error().kind(), ErrorKind::kInvalidArg);
}

TEST(Syscalls, ProcessVmReadStopsShortAtUnmappedMemory) {
  char* p = static_cast<char*>(
      mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 'x', 4096);
  ASSERT_EQ(munmap(p + 4096, 4096), 0);
  std::string out(2 * 4096, '\0');
  auto n = ProcessVmRead(getpid(), RemoteAddr(reinterpret_cast<uint64_t>(p)),
                         std::as_writable_bytes(std::span(out)));
  munmap(p, 4096);
  ASSERT_TRUE(n) << n.error().Message();
  EXPECT_EQ(*n, 4096u);
  EXPECT_EQ(out.substr(0, 4096), std::string(4096, 'x'));
}

TEST(Syscalls, ProcessVmReadOfUnmappedStartIsEfault) {
  char buf[16];
  auto n = ProcessVmRead(getpid(), RemoteAddr(4096), std::as_writable_bytes(std::span(buf)));
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().sys_errno(), EFAULT);
}

TEST(Syscalls, TgkillDeliversToTheNamedThread) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
  ASSERT_TRUE(Tgkill(getpid(), Gettid(), SIGUSR1));
  timespec zero{};
  EXPECT_EQ(sigtimedwait(&set, nullptr, &zero), SIGUSR1);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  auto gone = Tgkill(getpid(), 0x7ffffff0, SIGUSR1);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().sys_errno(), ESRCH);
}

TEST(Syscalls, GettidDiffersBetweenThreads) {
  EXPECT_EQ(Gettid(), getpid());
  pid_t other = 0;
  std::thread t([&] { other = Gettid(); });
  t.join();
  EXPECT_NE(other, getpid());
  EXPECT_GT(other, 0);
}

TEST(Syscalls, PrlimitReadsAndLowersAChildsLimit) {
  auto own = Prlimit(0, RLIMIT_NOFILE);
  ASSERT_TRUE(own) << own.error().Message();
  rlimit expected{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &expected), 0);
  EXPECT_EQ(own->rlim_cur, expected.rlim_cur);
  EXPECT_EQ(own->rlim_max, expected.rlim_max);

  auto child = ForkedChild::Start(Sleep);
  ASSERT_TRUE(child);
  rlimit lower{64, own->rlim_max};
  ASSERT_TRUE(SetPrlimit(child->pid(), RLIMIT_NOFILE, lower));
  auto seen = Prlimit(child->pid(), RLIMIT_NOFILE);
  ASSERT_TRUE(seen) << seen.error().Message();
  EXPECT_EQ(seen->rlim_cur, 64u);
}

}  // namespace
}  // namespace cryo::sys
