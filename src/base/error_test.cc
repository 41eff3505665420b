#include "base/error.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace cryo {
namespace {

Result<int> Fails() { return SysError(ENOENT, "open /x"); }
Result<int> Chains() {
  int v = CRYO_TRY_CTX(Fails(), "dump pid {}", 42);
  return v + 1;
}

TEST(Error, ContextChainsOutermostFirstWithErrnoLast) {
  auto r = Chains();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().Message(), "dump pid 42: open /x: ENOENT (No such file or directory)");
  EXPECT_EQ(r.error().kind(), ErrorKind::kSys);
  EXPECT_EQ(r.error().sys_errno(), ENOENT);
}

TEST(Error, TryYieldsValueOnSuccess) {
  auto ok = []() -> Result<int> {
    int v = CRYO_TRY(Result<int>(7));
    return v * 2;
  }();
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 14);
}

}  // namespace
}  // namespace cryo
