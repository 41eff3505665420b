#include "dump/tracking.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace cryo::dump {
namespace {

class TrackingStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cryo-tracking-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void WriteRaw(const std::string& text) {
    std::ofstream(dir_ + "/" + kTrackingFile, std::ios::trunc) << text;
  }
  std::string dir_;
};

TEST_F(TrackingStateTest, RoundTripsRangesHotRangesAndRound) {
  TrackingState s{.pid = 42,
                  .start_time = 7,
                  .fd = 1000,
                  .ranges = {{0x10000, 0x30000}, {0x50000, 0x60000}},
                  .hot = {{0x20000, 0x30000}, {0x50000, 0x51000}},
                  .round = 5};
  TrackingState child{.pid = 43, .start_time = 9, .fd = 999, .ranges = {}, .hot = {}, .round = 1};
  ASSERT_TRUE(WriteTrackingStates(dir_, {s, child}));
  auto all = ReadTrackingStates(dir_);
  ASSERT_TRUE(all) << all.error().Message();
  ASSERT_EQ(all->size(), 2u);
  const TrackingState* back = FindTracking(*all, 42);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->round, 5u);
  EXPECT_EQ(back->ranges, s.ranges);
  EXPECT_EQ(back->hot, s.hot);
  ASSERT_NE(FindTracking(*all, 43), nullptr);
  EXPECT_EQ(FindTracking(*all, 43)->fd, 999);
  EXPECT_EQ(FindTracking(*all, 44), nullptr);
}

TEST_F(TrackingStateTest, ReadsTheSingleProcessFormAndRefusesATwiceTrackedPid) {
  WriteRaw(R"({"pid":5,"start_time":2,"fd":3,"round":1,"ranges":[[65536,131072]],"hot":[]})");
  auto one = ReadTrackingStates(dir_);
  ASSERT_TRUE(one) << one.error().Message();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].pid, 5);
  const std::string st = R"({"pid":5,"start_time":2,"fd":3,"round":1,"ranges":[],"hot":[]})";
  WriteRaw(R"({"processes":[)" + st + "," + st + "]}");
  auto twice = ReadTrackingStates(dir_);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().Message().find("twice"), std::string::npos);
  WriteRaw(R"({"processes":[]})");
  EXPECT_FALSE(ReadTrackingStates(dir_));
}

TEST_F(TrackingStateTest, RefusesHotRangesOutsideTrackedOnesAndUnsortedRanges) {
  const std::string head = R"({"pid":1,"start_time":2,"fd":3,"round":1,)";
  WriteRaw(head + R"("ranges":[[65536,131072]],"hot":[[131072,135168]]})");
  auto r = ReadTrackingStates(dir_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().Message().find("not tracked"), std::string::npos) << r.error().Message();

  WriteRaw(head + R"("ranges":[[131072,135168],[65536,69632]],"hot":[]})");
  EXPECT_FALSE(ReadTrackingStates(dir_));
  WriteRaw(head + R"("ranges":[[65536,65537]],"hot":[]})");
  EXPECT_FALSE(ReadTrackingStates(dir_));
  WriteRaw(head + R"("ranges":[[65536,131072]]})");  // no "hot"
  EXPECT_FALSE(ReadTrackingStates(dir_));
}

}  // namespace
}  // namespace cryo::dump
