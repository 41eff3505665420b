#include "mem/page_copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

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

// Sinks that compress blocks independently rely on this: with consecutive offsets, every batch
// but the last starts and ends on a multiple of the alignment, also where the work is split
// between workers (from 64 MiB on), and the content lands where its offset says.
TEST(CopyPagesTo, BatchesAreAlignedAndCoverTheOutputOnce) {
  constexpr uint64_t kLen = 72ull << 20;
  auto* p = static_cast<unsigned char*>(
      ::mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  for (uint64_t i = 0; i < kLen; i += kPage) std::memset(p + i, static_cast<int>(i / kPage), kPage);
  auto base = reinterpret_cast<uint64_t>(p);
  // Sources of odd sizes, consecutive in the output but not in memory order.
  std::vector<CopySource> src;
  uint64_t off = 0;
  const std::pair<uint64_t, uint64_t> pieces[] = {{40ull << 20, 32ull << 20},
                                                  {0, 13 * kPage},
                                                  {13 * kPage, (3ull << 20) - 13 * kPage},
                                                  {3ull << 20, 37ull << 20}};
  for (auto [a, len] : pieces) {
    src.push_back({{base + a, base + a + len}, true, off});
    off += len;
  }
  ASSERT_EQ(off, kLen);
  UniqueFd mem(::open("/proc/self/mem", O_RDONLY | O_CLOEXEC));
  std::vector<unsigned char> out(kLen);
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  std::mutex mu;
  constexpr uint64_t kAlign = 256 << 10;
  auto sink = [&](uint64_t at, std::span<const std::byte> data) -> Status {
    std::lock_guard lock(mu);
    calls.push_back({at, data.size()});
    std::memcpy(out.data() + at, data.data(), data.size());
    return {};
  };
  auto stats = CopyPagesTo(::getpid(), mem.get(), src, sink, kAlign);
  ASSERT_TRUE(stats) << stats.error().Message();
  EXPECT_EQ(stats->bytes, kLen);
  std::sort(calls.begin(), calls.end());
  uint64_t pos = 0;
  for (auto [at, len] : calls) {
    EXPECT_EQ(at, pos);
    EXPECT_EQ(at % kAlign, 0u);
    if (at + len != kLen) {
      EXPECT_EQ(len % kAlign, 0u) << at;
    }
    pos = at + len;
  }
  EXPECT_EQ(pos, kLen);
  for (const CopySource& s : src) {
    EXPECT_EQ(std::memcmp(out.data() + s.file_offset, reinterpret_cast<void*>(s.range.start),
                          s.range.end - s.range.start),
              0);
  }
  ::munmap(p, kLen);
}

}  // namespace
}  // namespace cryo::mem
