// Probes of what memory tracking and lazy restore need: userfaultfd and its features,
// PAGEMAP_SCAN, dirty tracking with uffd WP_ASYNC, and soft-dirty (off on many kernels).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <span>

#include "base/unique_fd.h"
#include "sys/compat_uapi.h"
#include "sys/forked_child.h"
#include "sys/probes.h"

namespace cryo::sys::probes {
namespace {

using std::chrono_literals::operator""ms;
constexpr auto kChildTimeout = 5000ms;
constexpr uint64_t kPage = 4096;

// An anonymous private mapping, unmapped on scope exit.
class Mapping {
 public:
  explicit Mapping(size_t pages)
      : size_(pages * kPage),
        addr_(mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) {}
  ~Mapping() {
    if (ok()) munmap(addr_, size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  bool ok() const { return addr_ != MAP_FAILED; }
  char* page(size_t i) const { return static_cast<char*>(addr_) + i * kPage; }
  uint64_t start() const { return reinterpret_cast<uint64_t>(addr_); }
  uint64_t end() const { return start() + size_; }

 private:
  size_t size_;
  void* addr_;
};

// UFFDIO_API handshake asking for `features`; returns false (errno set) when refused.
bool UffdApi(int fd, uint64_t features, uffdio_api* api) {
  *api = {};
  api->api = UFFD_API;
  api->features = features;
  return ioctl(fd, UFFDIO_API, api) == 0;
}

// PAGEMAP_SCAN of [start, end) for pages in `category`; returns the number of regions or -1.
long Scan(int pagemap, uint64_t start, uint64_t end, uint64_t flags, uint64_t category,
          std::span<page_region> out) {
  pm_scan_arg arg{};
  arg.size = sizeof arg;
  arg.flags = flags;
  arg.start = start;
  arg.end = end;
  arg.vec = reinterpret_cast<uint64_t>(out.data());
  arg.vec_len = out.size();
  arg.category_mask = category;
  arg.return_mask = category;
  return ioctl(pagemap, PAGEMAP_SCAN, &arg);
}

// Entry of /proc/self/pagemap for `addr` (bit 63 present, bit 55 soft-dirty), or 0 on failure.
uint64_t PagemapEntry(int pagemap, uint64_t addr) {
  uint64_t entry = 0;
  if (pread(pagemap, &entry, sizeof entry, static_cast<off_t>(addr / kPage * 8)) != sizeof entry) {
    return 0;
  }
  return entry;
}
constexpr uint64_t kPmPresent = 1ull << 63;
constexpr uint64_t kPmSoftDirty = 1ull << 55;

// Exit codes of the WP_ASYNC child.
enum WpAsyncResult : int {
  kWpOk = 0,
  kWpNoUffd = 1,
  kWpApiRefused = 2,
  kWpNoMemory = 3,
  kWpRegisterFailed = 4,
  kWpProtectFailed = 5,
  kWpNoPagemap = 6,
  kWpScanFailed = 7,
  kWpWrongPages = 8,
  kWpNotReprotected = 9,
  kWpSecondRoundWrong = 10,
};

const char* WpAsyncText(int code) {
  switch (code) {
    case kWpNoUffd:
      return "userfaultfd() failed";
    case kWpApiRefused:
      return "UFFDIO_API refused WP_ASYNC|WP_UNPOPULATED";
    case kWpNoMemory:
      return "mmap failed";
    case kWpRegisterFailed:
      return "UFFDIO_REGISTER MODE_WP failed";
    case kWpProtectFailed:
      return "UFFDIO_WRITEPROTECT failed";
    case kWpNoPagemap:
      return "cannot open /proc/self/pagemap";
    case kWpScanFailed:
      return "PAGEMAP_SCAN with PM_SCAN_WP_MATCHING failed";
    case kWpWrongPages:
      return "written pages not reported exactly";
    case kWpNotReprotected:
      return "pages not re-protected by the scan";
    case kWpSecondRoundWrong:
      return "second round did not report the rewritten page";
  }
  return "unknown failure";
}

// In the probe child: track 8 pages, write pages 2 and 5, expect exactly those two written;
// expect none after the scan re-protected them; write page 5 again, expect only it.
int WpAsyncChild() {
  UniqueFd uffd(static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (!uffd.valid()) return kWpNoUffd;
  uffdio_api api;
  if (!UffdApi(uffd.get(), UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, &api)) {
    return kWpApiRefused;
  }
  Mapping m(8);
  if (!m.ok()) return kWpNoMemory;
  uffdio_register reg{};
  reg.range = {m.start(), m.end() - m.start()};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(uffd.get(), UFFDIO_REGISTER, &reg) != 0) return kWpRegisterFailed;
  uffdio_writeprotect wp{};
  wp.range = reg.range;
  wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (ioctl(uffd.get(), UFFDIO_WRITEPROTECT, &wp) != 0) return kWpProtectFailed;
  UniqueFd pagemap(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) return kWpNoPagemap;

  m.page(2)[0] = 1;
  m.page(5)[100] = 1;
  std::array<page_region, 8> regions{};
  const uint64_t flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
  long n = Scan(pagemap.get(), m.start(), m.end(), flags, PAGE_IS_WRITTEN, regions);
  if (n < 0) return kWpScanFailed;
  if (n != 2 || regions[0].start != reinterpret_cast<uint64_t>(m.page(2)) ||
      regions[0].end != regions[0].start + kPage ||
      regions[1].start != reinterpret_cast<uint64_t>(m.page(5)) ||
      regions[1].end != regions[1].start + kPage) {
    return kWpWrongPages;
  }
  n = Scan(pagemap.get(), m.start(), m.end(), flags, PAGE_IS_WRITTEN, regions);
  if (n != 0) return kWpNotReprotected;
  m.page(5)[0] = 2;
  n = Scan(pagemap.get(), m.start(), m.end(), flags, PAGE_IS_WRITTEN, regions);
  if (n != 1 || regions[0].start != reinterpret_cast<uint64_t>(m.page(5))) {
    return kWpSecondRoundWrong;
  }
  return kWpOk;
}

// Exit codes of the soft-dirty child.
enum SoftDirtyResult : int {
  kSdOk = 0,
  kSdSetup = 1,
  kSdClearRefsFailed = 2,
  kSdNotSetByWrite = 3,
  kSdNotCleared = 4,
};

// In the probe child: a written page must show bit 55, lose it on "4" > clear_refs, and show it
// again after the next write.
int SoftDirtyChild() {
  Mapping m(1);
  UniqueFd pagemap(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  UniqueFd clear_refs(open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC));
  if (!m.ok() || !pagemap.valid() || !clear_refs.valid()) return kSdSetup;
  m.page(0)[0] = 1;
  if (write(clear_refs.get(), "4", 1) != 1) return kSdClearRefsFailed;
  uint64_t cleared = PagemapEntry(pagemap.get(), m.start());
  m.page(0)[0] = 2;
  uint64_t written = PagemapEntry(pagemap.get(), m.start());
  if (!(written & kPmPresent) || !(written & kPmSoftDirty)) return kSdNotSetByWrite;
  if (cleared & kPmSoftDirty) return kSdNotCleared;
  return kSdOk;
}

}  // namespace

void ProbeUserfaultfd(KernelFeatures* f) {
  UniqueFd uffd(static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  uffdio_api api{};
  if (!uffd.valid()) {
    f->userfaultfd_syscall = Missing("userfaultfd(): " + ErrnoText(errno));
  } else if (!UffdApi(uffd.get(), 0, &api)) {
    f->userfaultfd_syscall = Missing("UFFDIO_API: " + ErrnoText(errno));
  } else {
    // Asking for no feature makes the kernel report every feature it offers.
    f->uffd_features = api.features;
    f->uffd_ioctls = api.ioctls;
    f->userfaultfd_syscall = Ok(fmt::format("features {:#x}", api.features));
  }

  UniqueFd dev(open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
  if (!dev.valid()) {
    f->userfaultfd_dev = Missing("/dev/userfaultfd: " + ErrnoText(errno));
    return;
  }
  UniqueFd from_dev(ioctl(dev.get(), USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK));
  if (!from_dev.valid()) {
    f->userfaultfd_dev = Missing("USERFAULTFD_IOC_NEW: " + ErrnoText(errno));
  } else if (!UffdApi(from_dev.get(), 0, &api)) {
    f->userfaultfd_dev = Missing("UFFDIO_API on the device's uffd: " + ErrnoText(errno));
  } else {
    if (f->uffd_features == 0) {
      f->uffd_features = api.features;
      f->uffd_ioctls = api.ioctls;
    }
    f->userfaultfd_dev = Ok();
  }
}

void ProbePagemapScan(KernelFeatures* f) {
  Mapping m(4);
  UniqueFd pagemap(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!m.ok() || !pagemap.valid()) {
    f->pagemap_scan = Missing("setup: " + ErrnoText(errno));
    return;
  }
  m.page(1)[0] = 1;
  std::array<page_region, 4> regions{};
  long n = Scan(pagemap.get(), m.start(), m.end(), 0, PAGE_IS_PRESENT, regions);
  if (n < 0) {
    f->pagemap_scan = Missing("PAGEMAP_SCAN: " + ErrnoText(errno));
    return;
  }
  // Independent check: the plain pagemap entries say the same.
  bool present1 = PagemapEntry(pagemap.get(), m.start() + kPage) & kPmPresent;
  bool present0 = PagemapEntry(pagemap.get(), m.start()) & kPmPresent;
  uint64_t written = reinterpret_cast<uint64_t>(m.page(1));
  if (n != 1 || regions[0].start != written || regions[0].end != written + kPage || !present1 ||
      present0) {
    f->pagemap_scan = Missing(fmt::format("scan disagrees with pagemap ({} regions)", n));
    return;
  }
  f->pagemap_scan = Ok("found the one page written");
}

void ProbeZeroPage(KernelFeatures* f) {
  if (!f->pagemap_scan) {
    f->zero_page = Missing("no PAGEMAP_SCAN to tell the zero page from a page of zeros");
    return;
  }
  Mapping m(2);
  UniqueFd pagemap(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!m.ok() || !pagemap.valid()) {
    f->zero_page = Missing("setup: " + ErrnoText(errno));
    return;
  }
  madvise(m.page(0), 2 * kPage, MADV_NOHUGEPAGE);  // the huge zero page is another matter
  (void)*static_cast<volatile char*>(m.page(1));
  std::array<page_region, 2> present{}, zero{};
  long n = Scan(pagemap.get(), m.start(), m.end(), 0, PAGE_IS_PRESENT, present);
  long z = Scan(pagemap.get(), m.start(), m.end(), 0, PAGE_IS_PFNZERO, zero);
  if (n != 1 || z < 0) {
    f->zero_page = Missing(fmt::format("the read page is not present ({} regions)", n));
  } else if (z == 0) {
    f->zero_page = Missing("a read fault allocated a page of its own");
  } else {
    f->zero_page = Ok("a read fault mapped it");
  }
}

void ProbeUffdWpAsync(KernelFeatures* f) {
  constexpr uint64_t kNeeded = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (!f->userfaultfd_syscall) {
    f->uffd_wp_async = Missing("no userfaultfd");
    return;
  }
  // Without WP_ASYNC a write to a protected page would wait for a handler that does not exist:
  // only try when offered, and in a child with a timeout all the same.
  if ((f->uffd_features & kNeeded) != kNeeded) {
    f->uffd_wp_async = Missing("UFFDIO_API does not offer WP_ASYNC and WP_UNPOPULATED");
    return;
  }
  if (!f->pagemap_scan) {
    f->uffd_wp_async = Missing("no PAGEMAP_SCAN to read the dirty pages");
    return;
  }
  auto code = RunInChild(WpAsyncChild, kChildTimeout);
  if (!code) {
    f->uffd_wp_async = Missing(code.error().Message());
  } else if (*code != kWpOk) {
    f->uffd_wp_async = Missing(WpAsyncText(*code));
  } else {
    f->uffd_wp_async = Ok("two writes seen, re-protected, one more seen");
  }
}

void ProbeSoftDirty(KernelFeatures* f) {
  auto code = RunInChild(SoftDirtyChild, kChildTimeout);
  if (!code) {
    f->soft_dirty = Missing(code.error().Message());
    return;
  }
  switch (*code) {
    case kSdOk:
      f->soft_dirty = Ok();
      break;
    case kSdSetup:
      f->soft_dirty = Missing("cannot open pagemap or clear_refs");
      break;
    case kSdClearRefsFailed:
      f->soft_dirty = Missing("writing 4 to clear_refs failed");
      break;
    case kSdNotSetByWrite:
      f->soft_dirty = Missing("pagemap bit 55 not set by a write; CONFIG_MEM_SOFT_DIRTY is off?");
      break;
    case kSdNotCleared:
      f->soft_dirty = Missing("clear_refs 4 did not clear bit 55");
      break;
    default:
      f->soft_dirty = Missing(fmt::format("probe child exit {}", *code));
      break;
  }
}

}  // namespace cryo::sys::probes
