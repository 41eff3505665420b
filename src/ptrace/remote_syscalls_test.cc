#include "ptrace/remote_syscalls.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "ptrace/freezer.h"

namespace cryo::ptrace {
namespace {

// A child that sleeps 300 ms in one nanosleep and reports how long it slept and the result.
struct Sleeper {
  pid_t pid = -1;
  int report_fd = -1;
  ~Sleeper() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (report_fd >= 0) ::close(report_fd);
  }
};

void StartSleeper(Sleeper& s) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  s.pid = ::fork();
  ASSERT_GE(s.pid, 0);
  if (s.pid == 0) {
    ::close(fds[0]);
    timespec t0{}, t1{};
    ::clock_gettime(CLOCK_MONOTONIC, &t0);
    timespec req{0, 300'000'000};
    int rc = static_cast<int>(::syscall(SYS_nanosleep, &req, nullptr));
    ::clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    long msg[2] = {rc, ms};
    (void)!::write(fds[1], msg, sizeof msg);
    ::_exit(0);
  }
  ::close(fds[1]);
  s.report_fd = fds[0];
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it enter nanosleep
}

TEST(RemoteSyscalls, RunsSyscallsInTheTraceeAndLeavesItsSleepIntact) {
  Sleeper s;
  StartSleeper(s);
  {
    auto frozen = Freezer::FreezeProcess(s.pid);
    ASSERT_TRUE(frozen) << frozen.error().Message();
    auto gadget = FindSyscallGadget(s.pid);
    ASSERT_TRUE(gadget) << gadget.error().Message();
    auto rs = RemoteSyscalls::Start(frozen->threads()[0], *gadget);
    ASSERT_TRUE(rs) << rs.error().Message();
    auto pid = rs->Call(SYS_getpid);
    ASSERT_TRUE(pid);
    EXPECT_EQ(*pid, s.pid);
    {
      auto scratch = RemoteScratch::Map(*rs, s.pid, 4096);
      ASSERT_TRUE(scratch) << scratch.error().Message();
      uint64_t v = 0x1122334455667788ull, back = 0;
      ASSERT_TRUE(scratch->Write(0, std::as_bytes(std::span(&v, 1))));
      ASSERT_TRUE(scratch->Read(0, std::as_writable_bytes(std::span(&back, 1))));
      EXPECT_EQ(back, v);
    }
    ASSERT_TRUE(rs->Finish());
    ASSERT_TRUE(frozen->Release());
  }
  long msg[2] = {-99, 0};
  ASSERT_EQ(::read(s.report_fd, msg, sizeof msg), static_cast<ssize_t>(sizeof msg));
  EXPECT_EQ(msg[0], 0) << "nanosleep must restart, not fail with EINTR";
  EXPECT_GE(msg[1], 290) << "the sleep must not be cut short";
  int status = 0;
  ASSERT_EQ(::waitpid(s.pid, &status, 0), s.pid);
  s.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(Freezer, SeizingAMissingPidIsAnError) {
  auto frozen = Freezer::FreezeProcess(4194000);
  ASSERT_FALSE(frozen);
}

}  // namespace
}  // namespace cryo::ptrace
