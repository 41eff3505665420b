#include "proc/timers.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace cryo::proc {
namespace {

// Captured on 6.18 from a process with three timers (newest first, as the kernel lists them).
constexpr std::string_view kThree =
    "ID: 2\nsignal: 12/0000000000001234\nnotify: signal/tid.10240\nClockID: -6\n"
    "ID: 1\nsignal: 10/0000000000001234\nnotify: none/pid.10240\nClockID: 0\n"
    "ID: 0\nsignal: 10/00000000deadbeef\nnotify: signal/pid.10240\nClockID: 1\n";

TEST(TimersParser, ReadsEveryKindSortedById) {
  auto t = ParseTimers(kThree);
  ASSERT_TRUE(t) << t.error().Message();
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[0].id, 0);
  EXPECT_EQ((*t)[0].notify, SIGEV_SIGNAL);
  EXPECT_EQ((*t)[0].sigval, 0xdeadbeefu);
  EXPECT_EQ((*t)[0].clockid, 1);
  EXPECT_EQ((*t)[1].notify, SIGEV_NONE);
  EXPECT_EQ((*t)[2].notify, SIGEV_THREAD_ID);
  EXPECT_EQ((*t)[2].notify_pid, 10240);
  EXPECT_EQ((*t)[2].signo, 12);
  EXPECT_EQ((*t)[2].clockid, -6);
}

TEST(TimersParser, EmptyFileIsNoTimers) {
  auto t = ParseTimers("");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->empty());
}

TEST(TimersParser, RefusesIncompleteEntry) {
  EXPECT_FALSE(ParseTimers("ID: 3\nsignal: 10/0\n"));
  EXPECT_FALSE(ParseTimers("ID: 3\nsignal: 10/0\nnotify: sometimes/pid.1\nClockID: 0\n"));
  EXPECT_FALSE(ParseTimers("signal: 10/0\n"));
  EXPECT_FALSE(ParseTimers("ID: x\n"));
}

}  // namespace
}  // namespace cryo::proc
