#include "sys/kernel_features.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/prctl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "base/io.h"
#include "base/unique_fd.h"
#include "sys/compat_uapi.h"
#include "sys/forked_child.h"
#include "sys/vdso_layout.h"

namespace cryo::sys {
namespace {

using std::chrono_literals::operator""ms;

// "y", "m" or "n" for CONFIG_<name> of the running kernel, nullopt when its config is not
// readable (no /proc/config.gz). An independent witness for probes that depend on a config.
std::optional<bool> KernelConfig(const std::string& name) {
  FILE* p = popen("zcat /proc/config.gz 2>/dev/null", "r");
  if (p == nullptr) return std::nullopt;
  std::string text;
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
  pclose(p);
  if (text.empty()) return std::nullopt;
  return text.find("\nCONFIG_" + name + "=y\n") != std::string::npos;
}

size_t CountEntries(const char* dir_path) {
  size_t n = 0;
  if (DIR* d = opendir(dir_path)) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

size_t CountLines(const std::string& path) {
  auto text = ReadWholeFile(path);
  return text ? static_cast<size_t>(std::count(text->begin(), text->end(), '\n')) : 0;
}

void Print(const char* name, const Feature& f) {
  std::printf("  %-20s %-7s %s\n", name, f.ok ? "ok" : "MISSING", f.detail.c_str());
}

TEST(KernelFeatures, ProbeLeavesNoChildFdOrMappingBehind) {
  size_t fds_before = CountEntries("/proc/self/fd");
  size_t maps_before = CountLines("/proc/self/maps");
  KernelFeatures f = ProbeKernelFeatures();
  EXPECT_EQ(CountEntries("/proc/self/fd"), fds_before);
  EXPECT_EQ(CountLines("/proc/self/maps"), maps_before);
  errno = 0;
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG | __WALL), -1);
  EXPECT_EQ(errno, ECHILD);
  std::printf("kernel %s\n", f.release.c_str());
  Print("ptrace_seize", f.ptrace_seize);
  Print("ptrace_rseq_config", f.ptrace_rseq_config);
  Print("process_vm_readv", f.process_vm_readv);
  Print("pidfd_open", f.pidfd_open);
  Print("pidfd_getfd", f.pidfd_getfd);
  Print("clone3_set_tid", f.clone3_set_tid);
  Print("prctl_mm_map", f.prctl_mm_map);
  Print("arch_map_vdso", f.arch_map_vdso);
  Print("userfaultfd_syscall", f.userfaultfd_syscall);
  Print("userfaultfd_dev", f.userfaultfd_dev);
  Print("pagemap_scan", f.pagemap_scan);
  Print("uffd_wp_async", f.uffd_wp_async);
  Print("soft_dirty", f.soft_dirty);
  Print("zero_page", f.zero_page);
  std::printf("  uffd features %#llx ioctls %#llx, vdso: %s\n",
              static_cast<unsigned long long>(f.uffd_features),
              static_cast<unsigned long long>(f.uffd_ioctls), f.vdso.detail.c_str());
}

TEST(KernelFeatures, FeaturesIsProbedOnceAndCached) {
  const KernelFeatures& a = Features();
  const KernelFeatures& b = Features();
  EXPECT_EQ(&a, &b);
  EXPECT_FALSE(a.release.empty());
}

TEST(KernelFeatures, MissingFeaturesSayWhy) {
  const KernelFeatures& f = Features();
  for (const Feature* x :
       {&f.ptrace_seize, &f.ptrace_rseq_config, &f.process_vm_readv, &f.pidfd_open, &f.pidfd_getfd,
        &f.clone3_set_tid, &f.prctl_mm_map, &f.arch_map_vdso, &f.userfaultfd_syscall,
        &f.userfaultfd_dev, &f.pagemap_scan, &f.uffd_wp_async, &f.soft_dirty, &f.zero_page}) {
    if (!x->ok) {
      EXPECT_FALSE(x->detail.empty());
    }
  }
}

TEST(KernelFeatures, DependentFeaturesAreConsistent) {
  const KernelFeatures& f = Features();
  if (f.uffd_wp_async) {
    EXPECT_TRUE(f.pagemap_scan);
    EXPECT_TRUE(f.userfaultfd_syscall);
    EXPECT_TRUE(f.uffd_features & UFFD_FEATURE_WP_ASYNC);
  }
  if (f.pidfd_getfd) {
    EXPECT_TRUE(f.pidfd_open);
  }
  if (f.ptrace_rseq_config) {
    EXPECT_TRUE(f.ptrace_seize);
  }
  if (f.prctl_mm_map) {
    EXPECT_EQ(f.mm_map_size, sizeof(prctl_mm_map));
  }
}

TEST(KernelFeatures, PtraceSeizeMatchesTracerPidOfASeizedChild) {
  auto child = ForkedChild::Start([] {
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(child);
  bool seized = ptrace(PTRACE_SEIZE, child->pid(), 0, 0) == 0;
  auto status = ReadWholeFile("/proc/" + std::to_string(child->pid()) + "/status");
  ASSERT_TRUE(status);
  bool traced_by_us =
      status->find("\nTracerPid:\t" + std::to_string(getpid()) + "\n") != std::string::npos;
  EXPECT_EQ(seized, traced_by_us);
  EXPECT_EQ(Features().ptrace_seize.ok, traced_by_us);
}

TEST(KernelFeatures, PagemapScanMatchesWhetherTheIoctlIsKnown) {
  // A known ioctl rejects a zero-sized argument with EINVAL; an unknown one gives ENOTTY.
  UniqueFd pagemap(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(pagemap.valid());
  pm_scan_arg arg{};
  ASSERT_EQ(ioctl(pagemap.get(), PAGEMAP_SCAN, &arg), -1);
  EXPECT_EQ(Features().pagemap_scan.ok, errno == EINVAL) << "errno " << errno;
}

TEST(KernelFeatures, UffdFeatureBitsMatchWhatTheApiAccepts) {
  const KernelFeatures& f = Features();
  if (!f.userfaultfd_syscall) GTEST_SKIP() << f.userfaultfd_syscall.detail;
  for (uint64_t bit : {UFFD_FEATURE_WP_ASYNC, UFFD_FEATURE_WP_UNPOPULATED, UFFD_FEATURE_EVENT_FORK,
                       UFFD_FEATURE_MOVE}) {
    UniqueFd uffd(static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
    ASSERT_TRUE(uffd.valid());
    uffdio_api api{UFFD_API, bit, 0};
    bool accepted = ioctl(uffd.get(), UFFDIO_API, &api) == 0;
    EXPECT_EQ(accepted, (f.uffd_features & bit) != 0) << "feature bit " << bit;
  }
}

TEST(KernelFeatures, SoftDirtyAndVdsoRemapMatchKernelConfig) {
  auto soft_dirty = KernelConfig("MEM_SOFT_DIRTY");
  auto checkpoint = KernelConfig("CHECKPOINT_RESTORE");
  auto uffd = KernelConfig("USERFAULTFD");
  if (!soft_dirty) GTEST_SKIP() << "no /proc/config.gz";
  const KernelFeatures& f = Features();
  EXPECT_EQ(f.soft_dirty.ok, *soft_dirty) << f.soft_dirty.detail;
  // ARCH_MAP_VDSO_64 and PR_SET_MM_MAP exist only with CONFIG_CHECKPOINT_RESTORE (we run as
  // root with CAP_SYS_ADMIN, so permissions do not interfere).
  EXPECT_EQ(f.arch_map_vdso.ok, *checkpoint) << f.arch_map_vdso.detail;
  EXPECT_EQ(f.prctl_mm_map.ok, *checkpoint) << f.prctl_mm_map.detail;
  EXPECT_EQ(f.userfaultfd_syscall.ok, *uffd) << f.userfaultfd_syscall.detail;
}

TEST(KernelFeatures, VdsoLayoutIsThatOfOwnMaps) {
  auto maps = ReadWholeFile("/proc/self/maps");
  ASSERT_TRUE(maps);
  auto own = ParseVdsoLayout(*maps);
  ASSERT_TRUE(own);
  const VdsoLayout& l = Features().vdso;
  EXPECT_TRUE(l.found);
  EXPECT_EQ(l.vvar_size, own->vvar_size);
  EXPECT_EQ(l.vvar_vclock_size, own->vvar_vclock_size);
  EXPECT_EQ(l.vdso_size, own->vdso_size);
  EXPECT_EQ(l.vdso_offset, own->vdso_offset);
}

}  // namespace
// Independent of PAGEMAP_SCAN: with the zero page, two read-faulted pages of two mappings have
// the same frame number in /proc/self/pagemap; without it, each has its own.
TEST(KernelFeatures, ZeroPageProbeAgreesWithPagemapFrames) {
  constexpr size_t kPageSize = 4096;
  std::array<void*, 2> m{};
  std::array<uint64_t, 2> pfn{};
  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(pagemap.valid());
  for (int i = 0; i < 2; i++) {
    m[i] = ::mmap(nullptr, kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m[i], MAP_FAILED);
    (void)*static_cast<volatile char*>(m[i]);
    uint64_t entry = 0;
    off_t off = static_cast<off_t>(reinterpret_cast<uint64_t>(m[i]) / kPageSize * 8);
    ASSERT_EQ(::pread(pagemap.get(), &entry, sizeof entry, off),
              static_cast<ssize_t>(sizeof entry));
    pfn[i] = entry & ((1ull << 55) - 1);
  }
  for (void* x : m) ::munmap(x, kPageSize);
  if (pfn[0] == 0) GTEST_SKIP() << "frame numbers are hidden from this process (no CAP_SYS_ADMIN)";
  EXPECT_EQ(Features().zero_page.ok, pfn[0] == pfn[1]) << Features().zero_page.detail;
}

}  // namespace cryo::sys
