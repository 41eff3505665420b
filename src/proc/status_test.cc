#include "proc/status.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/io.h"
#include "proc/fixture.h"

namespace cryo::proc {
namespace {

constexpr std::string_view kMinimal =
    "Name:\tx\nState:\tS (sleeping)\nTgid:\t7\nPid:\t8\nPPid:\t1\nUid:\t1\t2\t3\t4\n"
    "Gid:\t5\t6\t7\t8\n";

TEST(StatusParser, ReadsCapturedPython3Status) {
  auto st = ParseStatus(Fixture("python3.status"));
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_EQ(st->name, "python3");
  EXPECT_EQ(st->state, 'R');
  EXPECT_TRUE(st->has_umask);
  EXPECT_EQ(st->umask, 027u);
  EXPECT_EQ(st->tgid, st->pid);
  EXPECT_GT(st->ppid, 0);
  EXPECT_EQ(st->tracer_pid, 0);
  EXPECT_EQ(st->uids, (std::array<uint32_t, 4>{0, 0, 0, 0}));
  EXPECT_TRUE(st->groups.empty());
  EXPECT_EQ(st->nspid, std::vector<pid_t>{st->pid});
  EXPECT_EQ(st->threads, 3);
  EXPECT_EQ(st->sig_blk, 1u << (SIGUSR2 - 1));
  EXPECT_TRUE(st->sig_cgt & (1u << (SIGUSR1 - 1)));
  EXPECT_TRUE(st->sig_ign & (1u << (SIGPIPE - 1)));
  EXPECT_EQ(st->cap_eff, 0x000001fffeffffffu);
  EXPECT_EQ(st->cap_inh, 0u);
  EXPECT_EQ(st->no_new_privs, 0);
  EXPECT_EQ(st->seccomp, 0);
}

TEST(StatusParser, ReadsPidsOfEveryNamespaceAndSupplementaryGroups) {
  auto st = ParseStatus(Fixture("nested.status"));
  ASSERT_TRUE(st) << st.error().Message();
  ASSERT_EQ(st->nspid.size(), 2u);
  EXPECT_EQ(st->nspid[0], st->pid);
  EXPECT_EQ(st->nspid[1], 1);
  EXPECT_EQ(st->groups, (std::vector<uint32_t>{4, 24, 27}));
  EXPECT_EQ(st->name, "sleep");
  EXPECT_EQ(st->state, 'S');
}

TEST(StatusParser, UnescapesNameAndKeepsItsBlanks) {
  auto st =
      ParseStatus("Name:\t a\\nb\\\\c\t\n" + std::string(kMinimal.substr(kMinimal.find('\n') + 1)));
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_EQ(st->name, " a\nb\\c\t");
}

TEST(StatusParser, WithoutUmaskLineKeepsDefault) {
  auto st = ParseStatus(kMinimal);
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_FALSE(st->has_umask);
  EXPECT_EQ(st->umask, 022u);
  EXPECT_EQ(st->uids, (std::array<uint32_t, 4>{1, 2, 3, 4}));
  EXPECT_EQ(st->gids, (std::array<uint32_t, 4>{5, 6, 7, 8}));
}

TEST(StatusParser, MissingRequiredFieldIsAnError) {
  std::string text(kMinimal);
  size_t pid = text.find("Pid:");
  text.erase(pid, text.find('\n', pid) + 1 - pid);
  auto st = ParseStatus(text);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().kind(), ErrorKind::kInternal);
}

TEST(StatusParser, MalformedValueIsAnErrorQuotingTheLine) {
  for (const char* extra : {"SigBlk:\tzz\n", "Uid:\t1\t2\t3\n", "Threads:\t-1\n", "NSpid:\t\n",
                            "Umask:\t0999\n", "no colon here\n", "Pid:\t99999999999\n"}) {
    auto st = ParseStatus(std::string(kMinimal) + extra);
    ASSERT_FALSE(st) << extra;
    EXPECT_NE(st.error().Message().find("line 8"), std::string::npos) << st.error().Message();
  }
}

TEST(StatusParser, ReadsOwnLiveStatus) {
  auto text = ReadWholeFile("/proc/self/status");
  ASSERT_TRUE(text);
  auto st = ParseStatus(*text);
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_EQ(st->pid, getpid());
  EXPECT_EQ(st->ppid, getppid());
  EXPECT_EQ(st->uids[1], geteuid());
  mode_t mask = umask(0);
  umask(mask);
  EXPECT_EQ(st->umask, mask);
}

}  // namespace
}  // namespace cryo::proc
