// Dirty-page tracking with an asynchronous userfaultfd write-protect (no soft-dirty on this
// kernel): registered ranges are write-protected; the kernel itself clears the protection of a
// page on its first write (UFFD_FEATURE_WP_ASYNC), and PAGEMAP_SCAN reports and re-protects the
// written pages atomically. The uffd belongs to the target's mm (see dump/tracking.h for how it is
// made there); all ioctls here act on that mm from our side.
#pragma once

#include <cstdint>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "mem/page_scan.h"

namespace cryo::mem {

class UffdTracker {
 public:
  // Takes a userfaultfd created in the target. `fresh`: it still needs UFFDIO_API (which enables
  // WP_ASYNC | WP_UNPOPULATED); an adopted one from an earlier round has had it.
  static Result<UffdTracker> Adopt(UniqueFd uffd, bool fresh);

  // Registers [start, end) for write-protect tracking and protects it (unpopulated pages too).
  // Returns false (not an error) when the kernel refuses this range: it is registered with
  // another userfaultfd (EBUSY) or cannot be (EINVAL); the caller copies such ranges in full.
  Result<bool> Track(uint64_t start, uint64_t end);
  // Undoes Track: clears the protection and the registration. ENOMEM/EINVAL (range gone) are fine.
  Status Untrack(uint64_t start, uint64_t end);
  // Clears the protection of [start, end) but keeps it registered: writes there no longer fault
  // (a hot range, copied whole every round instead); Reprotect(), or a scan with
  // ScanWrittenAndReprotect, arms it again.
  Status Unprotect(uint64_t start, uint64_t end);

  int fd() const { return uffd_.get(); }

 private:
  explicit UffdTracker(UniqueFd fd) : uffd_(std::move(fd)) {}
  UniqueFd uffd_;
};

// Appends to `out` the pages of [start, end) written since they were last protected, and
// protects them again in the same walk (PM_SCAN_WP_MATCHING). The range must lie inside
// ranges registered with a WP_ASYNC uffd (EPERM otherwise, from PM_SCAN_CHECK_WPASYNC).
Status ScanWrittenAndReprotect(int pagemap_fd, uint64_t start, uint64_t end,
                               std::vector<PageRange>& out);

}  // namespace cryo::mem
