#include "mem/page_scan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "base/unique_fd.h"
#include "sys/kernel_features.h"

namespace cryo::mem {
namespace {

constexpr uint64_t kPage = 4096;

class PageScan : public ::testing::Test {
 protected:
  void SetUp() override {
    pagemap_.Reset(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(pagemap_.valid());
  }
  UniqueFd pagemap_;
};

TEST_F(PageScan, FindsWrittenAnonPagesAndSkipsUntouchedPages) {
  auto* p = static_cast<volatile char*>(
      ::mmap(nullptr, 64 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ::madvise(const_cast<char*>(p), 64 * kPage, MADV_NOHUGEPAGE);
  p[3 * kPage] = 1;
  p[4 * kPage + 100] = 2;
  p[10 * kPage] = 3;
  auto base = reinterpret_cast<uint64_t>(p);
  std::vector<PageRange> out;
  ASSERT_TRUE(ScanDataPages(pagemap_.get(), base, base + 64 * kPage, out));
  std::vector<PageRange> want = {{base + 3 * kPage, base + 5 * kPage},
                                 {base + 10 * kPage, base + 11 * kPage}};
  EXPECT_EQ(out, want);
  ::munmap(const_cast<char*>(p), 64 * kPage);
}

TEST_F(PageScan, SkipsAndCountsZeroPages) {
  if (!sys::Features().zero_page) {
    GTEST_SKIP() << "read faults map no zero page here: " << sys::Features().zero_page.detail;
  }
  auto* p = static_cast<volatile char*>(
      ::mmap(nullptr, 64 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ::madvise(const_cast<char*>(p), 64 * kPage, MADV_NOHUGEPAGE);
  p[3 * kPage] = 1;
  (void)p[20 * kPage];  // read fault: maps the shared zero page
  auto base = reinterpret_cast<uint64_t>(p);
  std::vector<PageRange> out;
  ASSERT_TRUE(ScanDataPages(pagemap_.get(), base, base + 64 * kPage, out));
  std::vector<PageRange> want = {{base + 3 * kPage, base + 4 * kPage}};
  EXPECT_EQ(out, want);
  // The same with zero pages counted: the read-faulted pages are.
  (void)p[21 * kPage];
  out.clear();
  uint64_t zero = 0;
  ASSERT_TRUE(ScanDataPages(pagemap_.get(), base, base + 64 * kPage, out, &zero));
  EXPECT_EQ(out, want);
  EXPECT_EQ(zero, 2u);
  ::munmap(const_cast<char*>(p), 64 * kPage);
}

TEST_F(PageScan, PrivateFileMappingYieldsOnlyCopiedOnWritePages) {
  char path[] = "/tmp/cryo-scan-XXXXXX";
  UniqueFd fd(::mkstemp(path));
  ASSERT_TRUE(fd.valid());
  ::unlink(path);
  std::string data(8 * kPage, 'x');
  ASSERT_EQ(::write(fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  auto* p = static_cast<volatile char*>(
      ::mmap(nullptr, 8 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0));
  ASSERT_NE(p, MAP_FAILED);
  for (uint64_t i = 0; i < 8; i++) (void)p[i * kPage];  // all present, file-backed
  p[2 * kPage] = 'y';                                   // one copied-on-write page
  auto base = reinterpret_cast<uint64_t>(p);
  std::vector<PageRange> out;
  ASSERT_TRUE(ScanDataPages(pagemap_.get(), base, base + 8 * kPage, out));
  std::vector<PageRange> want = {{base + 2 * kPage, base + 3 * kPage}};
  EXPECT_EQ(out, want);
  ::munmap(const_cast<char*>(p), 8 * kPage);
}

TEST_F(PageScan, ManyScatteredRegionsAreAllReported) {
  // More regions than one ioctl's output vector holds: the scan must continue where it stopped.
  constexpr uint64_t kPages = 20000;
  auto* p = static_cast<volatile char*>(
      ::mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ::madvise(const_cast<char*>(p), kPages * kPage, MADV_NOHUGEPAGE);
  for (uint64_t i = 0; i < kPages; i += 2) p[i * kPage] = 1;
  auto base = reinterpret_cast<uint64_t>(p);
  std::vector<PageRange> out;
  ASSERT_TRUE(ScanDataPages(pagemap_.get(), base, base + kPages * kPage, out));
  ASSERT_EQ(out.size(), kPages / 2);
  for (uint64_t i = 0; i < out.size(); i++) {
    EXPECT_EQ(out[i].start, base + 2 * i * kPage);
    EXPECT_EQ(out[i].pages(), 1u);
  }
  ::munmap(const_cast<char*>(p), kPages * kPage);
}

TEST_F(PageScan, FindsPagesSharedWithAForkedChild) {
  auto* p = static_cast<char*>(
      ::mmap(nullptr, 8 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ::madvise(p, 8 * kPage, MADV_NOHUGEPAGE);
  for (int i = 0; i < 6; i++) p[i * kPage] = static_cast<char>(i + 1);
  auto base = reinterpret_cast<uint64_t>(p);
  std::vector<PageRange> out;
  ASSERT_TRUE(ScanSharedPages(pagemap_.get(), {base, base + 8 * kPage}, out));
  EXPECT_TRUE(out.empty()) << "pages of this process alone reported shared";

  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    (void)!::read(go[0], &c, 1);
    ::_exit(0);
  }
  p[2 * kPage] = 9;  // the parent's own copy again
  std::vector<PagemapEntry> entries;
  ASSERT_TRUE(ReadPagemap(pagemap_.get(), base, base + 8 * kPage, entries));
  out.clear();
  ASSERT_TRUE(ScanSharedPages(pagemap_.get(), {base, base + 8 * kPage}, out));
  (void)!::write(go[1], "x", 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(go[0]);
  ::close(go[1]);
  std::vector<PageRange> want = {{base, base + 2 * kPage}, {base + 3 * kPage, base + 6 * kPage}};
  EXPECT_EQ(out, want);
  ASSERT_EQ(entries.size(), 8u);
  EXPECT_TRUE(entries[0].present() && !entries[0].exclusive());
  EXPECT_TRUE(entries[2].present() && entries[2].exclusive());
  EXPECT_FALSE(entries[7].present());
  ::munmap(p, 8 * kPage);
}

}  // namespace
}  // namespace cryo::mem
