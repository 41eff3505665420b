#include "proc/stat.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/io.h"
#include "proc/fixture.h"

namespace cryo::proc {
namespace {

// Fields 3..52 of a real line; tests put their own pid and comm in front.
constexpr std::string_view kTail =
    "S 4237 4234 2577 0 -1 4194560 209 0 4 0 0 0 0 0 20 0 1 0 65785 2990080 397 "
    "18446744073709551615 94827592232960 94827592250889 140735911715600 0 0 0 0 6 0 1 0 0 17 1 0 "
    "0 0 0 0 94827592264976 94827592266240 94827951665152 140735911717492 140735911717501 "
    "140735911717501 140735911718889 0\n";

TEST(StatParser, ReadsCapturedPython3Stat) {
  auto st = ParseStat(Fixture("python3.stat"));
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_EQ(st->pid, 4214);
  EXPECT_EQ(st->comm, "python3");
  EXPECT_EQ(st->state, 'R');
  EXPECT_EQ(st->ppid, 4171);
  EXPECT_EQ(st->pgrp, 4171);
  EXPECT_EQ(st->session, 2577);
  EXPECT_EQ(st->tty_nr, 0);
  EXPECT_EQ(st->num_threads, 3);
  EXPECT_EQ(st->start_time, 65484u);
  EXPECT_EQ(st->start_code, 4321280u);
  EXPECT_EQ(st->end_code, 7148169u);
  EXPECT_EQ(st->start_stack, 140722696937840u);
  EXPECT_EQ(st->exit_signal, 17);
  EXPECT_EQ(st->start_data, 9723336u);
  EXPECT_EQ(st->end_data, 11027064u);
  EXPECT_EQ(st->start_brk, 962326528u);
  EXPECT_EQ(st->arg_start, 140722696944223u);
  EXPECT_EQ(st->arg_end, 140722696944251u);
  EXPECT_EQ(st->env_start, 140722696944251u);
  EXPECT_EQ(st->env_end, 140722696945639u);
}

TEST(StatParser, CommRunsToTheLastClosingParenthesis) {
  auto st = ParseStat("42 ((a) b)) " + std::string(kTail));
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_EQ(st->pid, 42);
  EXPECT_EQ(st->comm, "(a) b)");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 4237);
  EXPECT_EQ(st->env_end, 140735911718889u);
}

TEST(StatParser, CommMayHoldNewlineBlanksAndBeEmpty) {
  auto st = ParseStat("7 (x\n y ) " + std::string(kTail));
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_EQ(st->comm, "x\n y ");
  st = ParseStat("7 () " + std::string(kTail));
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_EQ(st->comm, "");
}

TEST(StatParser, ReadsNegativeTtyAndPgrp) {
  std::string tail(kTail);
  tail.replace(tail.find("4234 2577 0"), 11, "-1 2577 -5");
  auto st = ParseStat("7 (x) " + tail);
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_EQ(st->pgrp, -1);
  EXPECT_EQ(st->tty_nr, -5);
}

TEST(StatParser, MalformedTextGivesErrors) {
  std::string tail(kTail);
  std::string short_tail = tail.substr(0, tail.rfind(' '));  // drops exit_code, field 52
  std::string bad_number = tail;
  bad_number.replace(bad_number.find("94827592232960"), 3, "x48");
  std::vector<std::string> texts = {"",
                                    "7 x S 1",
                                    "7 )x( " + tail,
                                    "seven (x) " + tail,
                                    "7 (x) " + short_tail,
                                    "7 (x) " + bad_number,
                                    "7 (x) SS" + tail.substr(1),
                                    "7 (x)"};
  for (const std::string& text : texts) {
    auto st = ParseStat(text);
    ASSERT_FALSE(st) << "accepted: " << text;
    EXPECT_EQ(st.error().kind(), ErrorKind::kInternal);
  }
}

TEST(StatParser, ReadsOwnLiveStatWithOddComm) {
  char saved[17] = {};
  ASSERT_EQ(prctl(PR_GET_NAME, saved), 0);
  ASSERT_EQ(prctl(PR_SET_NAME, "x) y (z"), 0);
  auto text = ReadWholeFile("/proc/self/stat");
  ASSERT_EQ(prctl(PR_SET_NAME, saved), 0);
  ASSERT_TRUE(text);
  auto st = ParseStat(*text);
  ASSERT_TRUE(st) << st.error().Message();
  EXPECT_EQ(st->pid, getpid());
  EXPECT_EQ(st->comm, "x) y (z");
  EXPECT_EQ(st->ppid, getppid());
  EXPECT_EQ(st->state, 'R');
  EXPECT_NE(st->start_code, 0u);
}

}  // namespace
}  // namespace cryo::proc
