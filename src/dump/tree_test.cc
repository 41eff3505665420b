#include "dump/tree.h"

#include <gtest/gtest.h>

#include <array>

namespace cryo::dump {
namespace {

// Members from {pid, ppid, pgid, sid} rows (TreeMember holds a Freezer: move-only).
std::vector<TreeMember> Tree(const std::vector<std::array<pid_t, 4>>& rows) {
  std::vector<TreeMember> out;
  for (const auto& r : rows) {
    TreeMember& m = out.emplace_back();
    m.pid = r[0];
    m.ppid = r[1];
    m.pgid = r[2];
    m.sid = r[3];
  }
  return out;
}

auto Nothing = [](pid_t) { return false; };

std::string Refusal(const std::vector<TreeMember>& tree, std::function<bool(pid_t)> exists) {
  auto s = CheckSessionsAndGroups(tree, exists);
  if (s) return "";
  EXPECT_EQ(s.error().kind(), ErrorKind::kUnsupported);
  return s.error().Message();
}

TEST(TreeSessions, AcceptsWhatRestoreRebuilds) {
  auto t = Tree({
      {10, 1, 10, 10},   // root leads its session and group
      {11, 10, 10, 10},  // in its parent's group
      {12, 10, 12, 10},  // leads a group
      {13, 10, 12, 10},  // joins a sibling's group
      {14, 10, 14, 14},  // a new session
      {15, 14, 14, 14},  // in it
      {16, 10, 99, 10},  // a group whose leader is gone altogether
  });
  EXPECT_EQ(Refusal(t, Nothing), "");
  // The root in its caller's group and session, a child in that group too.
  t = Tree({{10, 1, 5, 4}, {11, 10, 5, 4}, {12, 10, 12, 4}, {13, 10, 12, 4}});
  EXPECT_EQ(Refusal(t, Nothing), "");
}

TEST(TreeSessions, RefusesWhatItCannotRebuild) {
  // A session neither its own nor its parent's.
  auto t = Tree({{10, 1, 10, 10}, {11, 10, 11, 11}, {12, 10, 10, 11}});
  EXPECT_NE(Refusal(t, Nothing).find("pid 12 is in session 11"), std::string::npos);
  // A group led by a live process outside the tree.
  t = Tree({{10, 1, 10, 10}, {11, 10, 77, 10}});
  EXPECT_NE(Refusal(t, [](pid_t p) { return p == 77; }).find("led by pid 77 outside"),
            std::string::npos);
  // A group whose leader is a member of another session.
  t = Tree({{10, 1, 10, 10}, {11, 10, 11, 11}, {12, 10, 11, 10}});
  EXPECT_NE(Refusal(t, Nothing).find("pid 12 is in process group 11, whose leader is in another"),
            std::string::npos);
}

}  // namespace
}  // namespace cryo::dump
