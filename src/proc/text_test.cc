#include "proc/text.h"

#include <gtest/gtest.h>

namespace cryo::proc {
namespace {

TEST(ProcText, ParseUintTakesTheWholeStringOnly) {
  EXPECT_EQ(ParseUint("ff", 16), 0xffu);
  EXPECT_EQ(ParseUint("0755", 8), 0755u);
  EXPECT_EQ(ParseUint("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseUint("18446744073709551616"));
  EXPECT_FALSE(ParseUint(""));
  EXPECT_FALSE(ParseUint("12 "));
  EXPECT_FALSE(ParseUint("-1"));
  EXPECT_FALSE(ParseUint("+1"));
  EXPECT_FALSE(ParseUint("8", 8));
}

TEST(ProcText, ParseIntAcceptsMinusOnly) {
  EXPECT_EQ(ParseInt("-5"), -5);
  EXPECT_EQ(ParseInt("5"), 5);
  EXPECT_FALSE(ParseInt("+5"));
  EXPECT_FALSE(ParseInt("-"));
}

TEST(ProcText, NextTokenSkipsBlanksAndLeavesTheRest) {
  std::string_view s = "  a\tbb  c";
  EXPECT_EQ(NextToken(&s), "a");
  EXPECT_EQ(NextToken(&s), "bb");
  EXPECT_EQ(s, "  c");
  EXPECT_EQ(NextToken(&s), "c");
  EXPECT_EQ(NextToken(&s), "");
}

TEST(ProcText, LineReaderYieldsUnterminatedLastLineAndCountsLines) {
  LineReader r("a\n\nb");
  std::string_view line;
  ASSERT_TRUE(r.Next(&line));
  EXPECT_EQ(line, "a");
  ASSERT_TRUE(r.Next(&line));
  EXPECT_EQ(line, "");
  ASSERT_TRUE(r.Next(&line));
  EXPECT_EQ(line, "b");
  EXPECT_EQ(r.line_number(), 3u);
  EXPECT_FALSE(r.Next(&line));
  EXPECT_EQ(CountLines("a\n\nb"), 3u);
  EXPECT_EQ(CountLines("a\n"), 1u);
  EXPECT_EQ(CountLines(""), 0u);
}

TEST(ProcText, BadLineCutsLongLines) {
  auto e = BadLine("maps", 3, "bad", std::string(500, 'x'));
  std::string msg = e.error().Message();
  EXPECT_EQ(msg.find("maps line 3: bad: \"xxx"), 0u) << msg;
  EXPECT_LT(msg.size(), 200u);
  EXPECT_TRUE(msg.ends_with("...\""));
}

}  // namespace
}  // namespace cryo::proc
