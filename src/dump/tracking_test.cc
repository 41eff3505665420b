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
  ASSERT_TRUE(WriteTrackingState(dir_, s));
  auto back = ReadTrackingState(dir_);
  ASSERT_TRUE(back) << back.error().Message();
  EXPECT_EQ(back->pid, 42);
  EXPECT_EQ(back->round, 5u);
  EXPECT_EQ(back->ranges, s.ranges);
  EXPECT_EQ(back->hot, s.hot);
}

TEST_F(TrackingStateTest, RefusesHotRangesOutsideTrackedOnesAndUnsortedRanges) {
  const std::string head = R"({"pid":1,"start_time":2,"fd":3,"round":1,)";
  WriteRaw(head + R"("ranges":[[65536,131072]],"hot":[[131072,135168]]})");
  auto r = ReadTrackingState(dir_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().Message().find("not tracked"), std::string::npos) << r.error().Message();

  WriteRaw(head + R"("ranges":[[131072,135168],[65536,69632]],"hot":[]})");
  EXPECT_FALSE(ReadTrackingState(dir_));
  WriteRaw(head + R"("ranges":[[65536,65537]],"hot":[]})");
  EXPECT_FALSE(ReadTrackingState(dir_));
  WriteRaw(head + R"("ranges":[[65536,131072]]})");  // no "hot"
  EXPECT_FALSE(ReadTrackingState(dir_));
}

}  // namespace
}  // namespace cryo::dump
