#include "mem/uffd_tracker.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mem/page_scan.h"
#include "sys/kernel_features.h"

namespace cryo::mem {
namespace {

constexpr uint64_t kPage = 4096;

class UffdTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (fd < 0) GTEST_SKIP() << "userfaultfd: " << strerror(errno);
    auto t = UffdTracker::Adopt(UniqueFd(fd), true);
    if (!t) GTEST_SKIP() << "no WP_ASYNC: " << t.error().Message();
    tracker_.emplace(std::move(*t));
    pagemap_.Reset(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(pagemap_.valid());
    void* p =
        ::mmap(nullptr, 32 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    ::madvise(p, 32 * kPage, MADV_NOHUGEPAGE);
    mem_ = static_cast<volatile char*>(p);
    base_ = reinterpret_cast<uint64_t>(p);
  }
  void TearDown() override {
    if (mem_ != nullptr) ::munmap(const_cast<char*>(mem_), 32 * kPage);
  }
  std::optional<UffdTracker> tracker_;
  UniqueFd pagemap_;
  volatile char* mem_ = nullptr;
  uint64_t base_ = 0;
};

TEST_F(UffdTrackerTest, ReportsWrittenPagesOnceAndReprotects) {
  for (int i = 0; i < 8; i++) mem_[i * kPage] = 1;  // pages 0-7 hold data, 8-31 are holes
  ASSERT_TRUE(*tracker_->Track(base_, base_ + 32 * kPage));
  mem_[2 * kPage] = 2;
  mem_[20 * kPage] = 3;  // a hole: new page
  std::vector<PageRange> written;
  ASSERT_TRUE(ScanWrittenAndReprotect(pagemap_.get(), base_, base_ + 32 * kPage, written));
  std::vector<PageRange> want = {{base_ + 2 * kPage, base_ + 3 * kPage},
                                 {base_ + 20 * kPage, base_ + 21 * kPage}};
  EXPECT_EQ(written, want);
  written.clear();
  ASSERT_TRUE(ScanWrittenAndReprotect(pagemap_.get(), base_, base_ + 32 * kPage, written));
  EXPECT_TRUE(written.empty());
  ASSERT_TRUE(tracker_->Untrack(base_, base_ + 32 * kPage));
}

// The final dump's single walk: data pages and, among them, the written ones; nothing re-armed.
TEST_F(UffdTrackerTest, OneWalkFindsDataAndWrittenWithoutReprotecting) {
  for (int i = 0; i < 8; i++) mem_[i * kPage] = 1;
  ASSERT_TRUE(*tracker_->Track(base_, base_ + 32 * kPage));
  mem_[2 * kPage] = 2;
  mem_[3 * kPage] = 2;
  mem_[20 * kPage] = 3;
  // A read of a protected hole: the zero page, no data (where the kernel maps no zero page, a
  // page of its own: data, not written).
  (void)mem_[25 * kPage];
  std::vector<PageRange> data, written;
  uint64_t zero = 0;
  ASSERT_TRUE(ScanDataAndWritten(pagemap_.get(), base_, base_ + 32 * kPage, data, &written, &zero));
  std::vector<PageRange> want_data = {{base_, base_ + 8 * kPage},
                                      {base_ + 20 * kPage, base_ + 21 * kPage}};
  if (!sys::Features().zero_page) want_data.push_back({base_ + 25 * kPage, base_ + 26 * kPage});
  std::vector<PageRange> want_written = {{base_ + 2 * kPage, base_ + 4 * kPage},
                                         {base_ + 20 * kPage, base_ + 21 * kPage}};
  EXPECT_EQ(data, want_data);
  EXPECT_EQ(written, want_written);
  // Not re-armed: the re-protecting scan still sees the same writes.
  written.clear();
  ASSERT_TRUE(ScanWrittenAndReprotect(pagemap_.get(), base_, base_ + 32 * kPage, written));
  EXPECT_EQ(written, want_written);
  ASSERT_TRUE(tracker_->Untrack(base_, base_ + 32 * kPage));
}

// A hot range: unprotected, so the scan reports it written whole (whether written or not) and a
// scan re-arms it, after which only new writes show.
TEST_F(UffdTrackerTest, UnprotectedRangeReadsAsWrittenUntilRearmedByAScan) {
  for (int i = 0; i < 32; i++) mem_[i * kPage] = 1;
  ASSERT_TRUE(*tracker_->Track(base_, base_ + 32 * kPage));
  ASSERT_TRUE(tracker_->Unprotect(base_ + 8 * kPage, base_ + 16 * kPage));
  std::vector<PageRange> written;
  ASSERT_TRUE(ScanWrittenAndReprotect(pagemap_.get(), base_, base_ + 32 * kPage, written));
  std::vector<PageRange> want = {{base_ + 8 * kPage, base_ + 16 * kPage}};
  EXPECT_EQ(written, want);
  mem_[9 * kPage] = 2;
  written.clear();
  ASSERT_TRUE(ScanWrittenAndReprotect(pagemap_.get(), base_, base_ + 32 * kPage, written));
  want = {{base_ + 9 * kPage, base_ + 10 * kPage}};
  EXPECT_EQ(written, want);
  ASSERT_TRUE(tracker_->Untrack(base_, base_ + 32 * kPage));
}

TEST_F(UffdTrackerTest, ProtectedHolesAreNotData) {
  mem_[0] = 1;
  ASSERT_TRUE(*tracker_->Track(base_, base_ + 32 * kPage));
  std::vector<PageRange> data;
  ASSERT_TRUE(ScanDataPages(pagemap_.get(), base_, base_ + 32 * kPage, data));
  std::vector<PageRange> want = {{base_, base_ + kPage}};
  EXPECT_EQ(data, want);
}

}  // namespace
}  // namespace cryo::mem
