// The individual kernel feature probes behind ProbeKernelFeatures(), grouped by what cryo uses
// them for. Each one tries the feature for real and fills its fields of KernelFeatures; none
// fails or leaves anything behind (children are reaped, mappings and fds released).
#pragma once

#include <string_view>

#include "sys/kernel_features.h"

namespace cryo::sys::probes {

// probe_process.cc: ptrace seize/interrupt and rseq config, process_vm_readv, pidfd_open,
// pidfd_getfd, each against a forked child.
void ProbeTracing(KernelFeatures* f);
void ProbeProcessAccess(KernelFeatures* f);

// probe_restore.cc: clone3 with set_tid, PR_SET_MM_MAP, ARCH_MAP_VDSO_64 (needs f->vdso).
void ProbeClone3SetTid(KernelFeatures* f);
void ProbePrctlMmMap(KernelFeatures* f);
void ProbeArchMapVdso(KernelFeatures* f);

// probe_memory.cc: userfaultfd (syscall and device), PAGEMAP_SCAN, uffd WP_ASYNC dirty
// tracking (needs f->uffd_features), soft-dirty, the zero page on read faults (needs
// f->pagemap_scan).
void ProbeUserfaultfd(KernelFeatures* f);
void ProbePagemapScan(KernelFeatures* f);
void ProbeUffdWpAsync(KernelFeatures* f);
void ProbeSoftDirty(KernelFeatures* f);
void ProbeZeroPage(KernelFeatures* f);

// Helpers shared by the probe files.
Feature Ok(std::string detail = {});
Feature Missing(std::string detail);
// "EPERM (Operation not permitted)" for an errno value.
std::string ErrnoText(int err);

}  // namespace cryo::sys::probes
