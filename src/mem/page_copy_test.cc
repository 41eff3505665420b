#include "mem/page_copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "base/unique_fd.h"

namespace cryo::mem {
namespace {

constexpr uint64_t kPage = 4096;

TEST(CopyPages, RunningProcessPagesGoneMeanwhileBecomeZerosNotErrors) {
  auto* p = static_cast<char*>(
      ::mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 'a', 3 * kPage);
  ASSERT_EQ(::munmap(p + kPage, kPage), 0);  // the middle page went away after the scan
  auto base = reinterpret_cast<uint64_t>(p);
  UniqueFd mem(::open("/proc/self/mem", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(mem.valid());
  char name[] = "/tmp/cryo-copy-XXXXXX";
  UniqueFd out(::mkstemp(name));
  ASSERT_TRUE(out.valid());
  ::unlink(name);
  CopySource src{{base, base + 3 * kPage}, true, 0};

  EXPECT_FALSE(CopyPages(::getpid(), mem.get(), {&src, 1}, out.get(), /*running=*/false));
  auto stats = CopyPages(::getpid(), mem.get(), {&src, 1}, out.get(), /*running=*/true);
  ASSERT_TRUE(stats) << stats.error().Message();
  EXPECT_EQ(stats->pages_gone, 1u);
  std::vector<char> got(3 * kPage);
  ASSERT_EQ(::pread(out.get(), got.data(), got.size(), 0), static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got[0], 'a');
  EXPECT_EQ(got[kPage], 0);
  EXPECT_EQ(got[2 * kPage], 'a');
  ::munmap(p, kPage);
  ::munmap(p + 2 * kPage, kPage);
}

}  // namespace
}  // namespace cryo::mem
