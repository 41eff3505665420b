// KernelFeatures: what the running kernel offers cryo, found by trying each feature for real
// (never by version number), once per process. Probes that could disturb us run in forked
// children; every child is reaped and nothing is left behind.
#pragma once

#include <cstdint>
#include <string>

namespace cryo::sys {

// One probed feature: whether it works, and a short note (why not, or what was seen).
struct Feature {
  bool ok = false;
  std::string detail;
  explicit operator bool() const { return ok; }
};

// [vvar], [vvar_vclock] and [vdso] as this kernel maps them (6.x lays out a [vvar_vclock] that
// older kernels and CRIU 3.17 do not know). Sizes in bytes, 0 when the area is absent; offsets
// are from the start of the lowest of the three.
struct VdsoLayout {
  bool found = false;  // at least [vdso] exists
  uint64_t vvar_size = 0, vvar_vclock_size = 0, vdso_size = 0;
  uint64_t vvar_offset = 0, vvar_vclock_offset = 0, vdso_offset = 0;
  std::string detail;  // e.g. "[vvar] 16 KiB @+0, [vvar_vclock] 8 KiB @+0x4000, [vdso] ..."
};

struct KernelFeatures {
  std::string release;  // uname -r

  // Freezing and reading a tree.
  Feature ptrace_seize;        // PTRACE_SEIZE + PTRACE_INTERRUPT stop a child (group-stop event)
  Feature ptrace_rseq_config;  // PTRACE_GET_RSEQ_CONFIGURATION on a seized child
  Feature process_vm_readv;    // read a child's memory
  Feature pidfd_open;
  Feature pidfd_getfd;  // took a child's fd and got the same file

  // Restoring.
  Feature clone3_set_tid;    // clone3 created a child with a chosen free pid
  Feature prctl_mm_map;      // PR_SET_MM_MAP accepted a child's own current layout
  uint32_t mm_map_size = 0;  // sizeof(struct prctl_mm_map) the kernel expects (PR_SET_MM_MAP_SIZE)
  Feature arch_map_vdso;     // ARCH_MAP_VDSO_64 mapped a fresh vDSO in a child that had unmapped it

  // Memory tracking and lazy restore.
  Feature userfaultfd_syscall;  // userfaultfd(2) + UFFDIO_API
  Feature userfaultfd_dev;      // /dev/userfaultfd + USERFAULTFD_IOC_NEW
  uint64_t uffd_features = 0;   // UFFDIO_API feature bits (UFFD_FEATURE_*) offered
  uint64_t uffd_ioctls = 0;     // UFFDIO_API ioctl bits offered
  Feature pagemap_scan;         // PAGEMAP_SCAN found a page we had just written
  Feature uffd_wp_async;        // uffd WP_ASYNC tracking reported exactly the pages written
  Feature soft_dirty;           // clear_refs 4 + pagemap bit 55 tracked a write
  // A read of untouched anonymous memory maps the shared zero page (PAGEMAP_SCAN PFNZERO).
  // Some kernels allocate a page instead (seen: a Firecracker guest booted pvm_no_zero_page=1);
  // such pages are then dumped as data.
  Feature zero_page;

  VdsoLayout vdso;
};

// Runs every probe now (tens of milliseconds: a few forks). Never fails: a probe that cannot run
// reports its feature missing with the reason in `detail`. The caller must not ignore SIGCHLD
// (SIG_IGN would make the kernel reap the probe children before we can wait for them).
KernelFeatures ProbeKernelFeatures();

// The probe result of this process, computed on first use (thread-safe) and cached. Ask this
// rather than probing again.
const KernelFeatures& Features();

}  // namespace cryo::sys
