#include "proc/fdinfo.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "base/unique_fd.h"
#include "proc/fixture.h"

namespace cryo::proc {
namespace {

TEST(FdInfoParser, ReadsFlagsInOctalOfARegularFile) {
  auto info = ParseFdInfo(Fixture("fdinfo.regular"));
  ASSERT_TRUE(info) << info.error().Message();
  EXPECT_EQ(info->pos, 0u);
  // The kernel always adds O_LARGEFILE (0100000) on 64-bit, which glibc defines as 0 there.
  constexpr uint32_t kKernelLargeFile = 0100000;
  EXPECT_EQ(info->flags, static_cast<uint32_t>(O_RDONLY | O_APPEND | O_CLOEXEC) | kKernelLargeFile);
  EXPECT_GT(info->mnt_id, 0);
  EXPECT_GT(info->ino, 0u);
  EXPECT_TRUE(info->extra.empty());
}

TEST(FdInfoParser, KeepsEventfdLinesInOrder) {
  auto info = ParseFdInfo(Fixture("fdinfo.eventfd"));
  ASSERT_TRUE(info) << info.error().Message();
  using KV = std::pair<std::string, std::string>;
  EXPECT_EQ(
      info->extra,
      (std::vector<KV>{{"eventfd-count", "5"}, {"eventfd-id", "1"}, {"eventfd-semaphore", "0"}}));
  EXPECT_EQ(info->flags, static_cast<uint32_t>(O_RDWR | O_CLOEXEC));
}

TEST(FdInfoParser, KeysEpollTargetByTfd) {
  auto info = ParseFdInfo(Fixture("fdinfo.epoll"));
  ASSERT_TRUE(info) << info.error().Message();
  ASSERT_EQ(info->extra.size(), 1u);
  EXPECT_EQ(info->extra[0].first, "tfd");
  // "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x": the value keeps its inner
  // colons.
  EXPECT_NE(info->extra[0].second.find(" events:"), std::string::npos) << info->extra[0].second;
  EXPECT_NE(info->extra[0].second.find("pos:0 ino:"), std::string::npos);
}

TEST(FdInfoParser, KeysInotifyWatchByFirstWord) {
  auto info = ParseFdInfo(Fixture("fdinfo.inotify"));
  ASSERT_TRUE(info) << info.error().Message();
  const std::string* watch = info->Find("inotify");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->starts_with("wd:1 ino:")) << *watch;
  EXPECT_EQ(info->Find("wd"), nullptr);
}

TEST(FdInfoParser, KeepsMultiWordKeysOfTimerfd) {
  auto info = ParseFdInfo(Fixture("fdinfo.timerfd"));
  ASSERT_TRUE(info) << info.error().Message();
  ASSERT_NE(info->Find("clockid"), nullptr);
  EXPECT_EQ(*info->Find("clockid"), "1");
  ASSERT_NE(info->Find("settime flags"), nullptr);
  EXPECT_EQ(*info->Find("settime flags"), "00");
  ASSERT_NE(info->Find("it_value"), nullptr);
  EXPECT_EQ(*info->Find("it_value"), "(0, 0)");
}

TEST(FdInfoParser, ReadsLockLineAndNegativePosition) {
  auto info = ParseFdInfo(
      "pos:\t-2\nflags:\t02\nmnt_id:\t3\nlock:\t1: FLOCK  ADVISORY  WRITE 4242 fe:00:12 0 EOF\n");
  ASSERT_TRUE(info) << info.error().Message();
  EXPECT_EQ(info->pos, static_cast<uint64_t>(-2));
  EXPECT_EQ(info->ino, 0u);
  ASSERT_NE(info->Find("lock"), nullptr);
  EXPECT_EQ(*info->Find("lock"), "1: FLOCK  ADVISORY  WRITE 4242 fe:00:12 0 EOF");
}

TEST(FdInfoParser, MalformedOrIncompleteTextGivesErrors) {
  for (const char* text :
       {"", "flags:\t02\n", "pos:\t0\n", "pos:\tx\nflags:\t02\n", "pos:\t0\nflags:\t09\n",
        "pos:\t0\nflags:\t02\nmnt_id:\t-1\n", "pos:\t0\nflags:\t02\nino:\tabc\n"}) {
    auto info = ParseFdInfo(text);
    EXPECT_FALSE(info) << "accepted: " << text;
  }
}

TEST(FdInfoParser, MatchesLiveFdOfOwnPipe) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  auto text = ReadWholeFile("/proc/self/fdinfo/" + std::to_string(w.get()));
  ASSERT_TRUE(text);
  auto info = ParseFdInfo(*text);
  ASSERT_TRUE(info) << info.error().Message();
  struct stat sb {};
  ASSERT_EQ(fstat(w.get(), &sb), 0);
  EXPECT_EQ(info->ino, sb.st_ino);
  EXPECT_EQ(info->flags & O_ACCMODE, static_cast<uint32_t>(O_WRONLY));
  EXPECT_TRUE(info->flags & O_NONBLOCK);
  EXPECT_TRUE(info->flags & O_CLOEXEC);
}

}  // namespace
}  // namespace cryo::proc
