// The network lock against the real nft: a table for a connection no one uses (127.0.0.1 port 1
// to port 2) appears with its rules and goes when asked, when its owner goes, or stays on Keep().
#include "sys/netlock.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace cryo::sys {
namespace {

bool HaveNft() { return ::access("/usr/sbin/nft", X_OK) == 0 || ::access("/sbin/nft", X_OK) == 0; }

// `nft list table inet NAME` output, empty when there is no such table.
std::string ListTable(const std::string& name) {
  std::string cmd = "nft list table inet " + name + " 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return "";
  std::string out;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

TcpConnection Unused() {
  TcpConnection c;
  c.family = AF_INET;
  c.local_addr = {127, 0, 0, 1};
  c.local_port = 1;
  c.remote_addr = {127, 0, 0, 1};
  c.remote_port = 2;
  return c;
}

TEST(NetLock, BlocksBothDirectionsAndGoesWithItsOwner) {
  if (!HaveNft() || ::geteuid() != 0) GTEST_SKIP() << "needs nft and root";
  std::string name = NetLock::NewTableName(::getpid());
  {
    NetLock lock(name);
    EXPECT_FALSE(lock.active());
    ASSERT_TRUE(lock.Block(Unused()));
    EXPECT_TRUE(lock.active());
    std::string rules = ListTable(name);
    EXPECT_NE(rules.find("tcp sport 1 tcp dport 2"), std::string::npos) << rules;
    EXPECT_NE(rules.find("tcp sport 2 tcp dport 1"), std::string::npos) << rules;
  }
  EXPECT_EQ(ListTable(name), "");
}

TEST(NetLock, KeptTableIsRemovedByName) {
  if (!HaveNft() || ::geteuid() != 0) GTEST_SKIP() << "needs nft and root";
  std::string name = NetLock::NewTableName(::getpid());
  {
    NetLock lock(name);
    ASSERT_TRUE(lock.Block(Unused()));
    lock.Keep();
  }
  EXPECT_NE(ListTable(name), "");
  ASSERT_TRUE(RemoveNetLockTable(name));
  EXPECT_EQ(ListTable(name), "");
  EXPECT_TRUE(RemoveNetLockTable(name)) << "removing a table that is gone is not an error";
}

TEST(NetLock, NftErrorsAreReported) {
  if (!HaveNft() || ::geteuid() != 0) GTEST_SKIP() << "needs nft and root";
  auto s = RunNft("this is not nft syntax\n");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().Message().find("nft exited"), std::string::npos) << s.error().Message();
}

TEST(NetLock, EndpointsAreFormattedPerFamily) {
  std::array<uint8_t, 16> v4{127, 0, 0, 1};
  EXPECT_EQ(FormatEndpoint(AF_INET, v4, 80), "127.0.0.1:80");
  std::array<uint8_t, 16> v6{};
  v6[15] = 1;
  EXPECT_EQ(FormatEndpoint(AF_INET6, v6, 443), "[::1]:443");
}

}  // namespace
}  // namespace cryo::sys
