// Capture of a process's address space description: its mappings (from smaps) and the mm fields
// that PR_SET_MM_MAP restores (from stat, auxv, exe). Refuses mappings restore cannot recreate.
#pragma once

#include <sys/types.h>

#include <span>
#include <vector>

#include "base/error.h"
#include "mem/page_scan.h"
#include "model/process.h"

namespace cryo::dump {

class ShmemCollector;

// Which userfaultfd a mapping is registered with.
enum class UffdOwner { kNone, kOurs, kProcess };

struct MmCaptureOptions {
  // Ranges cryo's dirty tracker registered (dump/tracking.h): their "uw" flag is ours, not the
  // process's, and is not recorded.
  std::span<const mem::PageRange> tracked;
  // Accept mappings the process registered with its own userfaultfd (copied in full, their
  // modes recorded as kVmaUffdMissing/Wp/Minor: restore registers them again).
  bool allow_process_uffd = false;
  // Records shared-memory mappings (dump/capture_shmem.h); null: only their kind is recorded.
  ShmemCollector* shmem = nullptr;
};

// Fills p.vmas and p.mm (all but mm.brk, which needs a remote syscall). With `owners`, also
// appends, for each vma, whose userfaultfd it is registered with.
Status CaptureMm(pid_t pid, model::Process& p, const MmCaptureOptions& o = {},
                 std::vector<UffdOwner>* owners = nullptr);

}  // namespace cryo::dump
