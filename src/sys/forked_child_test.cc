#include "sys/forked_child.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace cryo::sys {
namespace {

using std::chrono_literals::operator""ms;

TEST(ForkedChild, ReturnsTheExitCodeOfItsBody) {
  auto code = RunInChild([] { return 42; }, 2000ms);
  ASSERT_TRUE(code) << code.error().Message();
  EXPECT_EQ(*code, 42);
}

TEST(ForkedChild, KillsAndReapsTheChildWhenDestroyed) {
  pid_t pid = 0;
  {
    auto child = ForkedChild::Start([] {
      for (;;) pause();
      return 0;
    });
    ASSERT_TRUE(child) << child.error().Message();
    pid = child->pid();
    ASSERT_EQ(kill(pid, 0), 0);
  }
  // Reaped, not a zombie: the pid is gone and we have no child left to wait for.
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(ForkedChild, WaitTimesOutWithAnErrorAndLeavesTheChildRunning) {
  auto child = ForkedChild::Start([] {
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(child) << child.error().Message();
  auto status = child->Wait(20ms);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().kind(), ErrorKind::kInternal);
  EXPECT_EQ(kill(child->pid(), 0), 0);
}

TEST(ForkedChild, DeathBySignalIsAnError) {
  auto code = RunInChild(
      [] {
        kill(getpid(), SIGKILL);
        return 0;
      },
      2000ms);
  ASSERT_FALSE(code);
  EXPECT_NE(code.error().Message().find("signal 9"), std::string::npos) << code.error().Message();
}

TEST(ForkedChild, ChildDoesNotOutliveATimedOutWaitExit) {
  auto child = ForkedChild::Start([] {
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(child);
  pid_t pid = child->pid();
  EXPECT_FALSE(child->WaitExit(10ms));
  EXPECT_EQ(kill(pid, 0), -1);
}

}  // namespace
}  // namespace cryo::sys
