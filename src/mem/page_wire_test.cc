#include "mem/page_wire.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace cryo::mem {
namespace {

class PageWire : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a_.Reset(sv[0]);
    b_.Reset(sv[1]);
  }
  // Sends raw bytes from a, then reads one frame at b: the error message, or "" if accepted.
  std::string Reject(const WireFrame& f, std::string extra = "") {
    std::vector<char> bytes(sizeof f + extra.size());
    std::memcpy(bytes.data(), &f, sizeof f);
    std::memcpy(bytes.data() + sizeof f, extra.data(), extra.size());
    EXPECT_EQ(::write(a_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    auto r = WireRecv(b_.get(), "peer");
    return r ? "" : r.error().Message();
  }
  UniqueFd a_, b_;
};

TEST_F(PageWire, GetAndDataRoundTrip) {
  WireFrame get;
  get.type = static_cast<uint16_t>(WireType::kGet);
  get.pid = 42;
  get.addr = 0x7f0000001000;
  get.len = 8192;
  ASSERT_TRUE(WireSend(a_.get(), get));
  auto r = WireRecv(b_.get(), "peer");
  ASSERT_TRUE(r) << r.error().Message();
  EXPECT_EQ(r->pid, 42);
  EXPECT_EQ(r->addr, 0x7f0000001000u);

  std::vector<std::byte> page(4096, std::byte{7});
  WireFrame data = get;
  data.type = static_cast<uint16_t>(WireType::kData);
  data.len = page.size();
  ASSERT_TRUE(WireSend(b_.get(), data, page));
  auto d = WireRecv(a_.get(), "peer");
  ASSERT_TRUE(d);
  std::vector<std::byte> got(d->len);
  ASSERT_TRUE(WireRecvPayload(a_.get(), got, "peer"));
  EXPECT_EQ(got, page);
}

TEST_F(PageWire, RefusesMalformedFrames) {
  WireFrame f;
  f.type = static_cast<uint16_t>(WireType::kGet);
  f.len = 4096;
  WireFrame bad = f;
  bad.magic = 0x12345678;
  EXPECT_NE(Reject(bad).find("bad magic"), std::string::npos);
  bad = f;
  bad.version = 9;
  EXPECT_NE(Reject(bad).find("protocol version 9"), std::string::npos);
  bad = f;
  bad.len = kWireMaxPayload + 4096;
  EXPECT_NE(Reject(bad).find("not whole pages"), std::string::npos);
  bad = f;
  bad.len = 100;
  EXPECT_NE(Reject(bad).find("not whole pages"), std::string::npos);
  bad = f;
  bad.addr = 0x1001;
  EXPECT_NE(Reject(bad).find("not whole pages"), std::string::npos);
  bad = f;
  bad.type = 77;
  EXPECT_NE(Reject(bad).find("unknown message type 77"), std::string::npos);
  bad = f;
  bad.type = static_cast<uint16_t>(WireType::kHello);
  EXPECT_NE(Reject(bad).find("payload on a frame"), std::string::npos);
  bad = f;
  bad.type = static_cast<uint16_t>(WireType::kError);
  bad.len = 5;
  EXPECT_NE(Reject(bad, "nope!").find("peer reports: nope!"), std::string::npos);
}

TEST_F(PageWire, ClosedConnectionIsAnError) {
  a_.Reset();
  auto r = WireRecv(b_.get(), "peer");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().Message().find("closed"), std::string::npos) << r.error().Message();
}

TEST(PageWireNames, OnlyPlainRelativeNamesOfOneOrTwoParts) {
  EXPECT_TRUE(WireSafeName("pre-1/pages-42.img"));
  EXPECT_TRUE(WireSafeName("inventory.img"));
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/b/c", "a/",
                          "x y", "a\\b", "..", "."}) {
    EXPECT_FALSE(WireSafeName(bad)) << bad;
  }
}

TEST(PageWireAddress, RefusesWhatIsNotAddressAndPort) {
  EXPECT_FALSE(WireConnect("localhost"));
  EXPECT_FALSE(WireConnect("127.0.0.1:0"));
  EXPECT_FALSE(WireConnect("127.0.0.1:70000"));
  EXPECT_FALSE(WireConnect("example.org:80"));  // no name lookups: addresses only
  EXPECT_FALSE(WireListen("not-an-address", 1234));
}

}  // namespace
}  // namespace cryo::mem
