// Restore planning: where the keep region (blob, arena, stack, premap area) goes, where each
// mapping is premapped, and the checks that must pass before any process is created.
#pragma once

#include <cstdint>
#include <vector>

#include "base/error.h"
#include "model/process.h"

namespace cryo::restore {

struct PremapSlot {
  size_t vma_index = 0;  // into Process::vmas
  uint64_t addr = 0;     // premap address of the vma's start
  // Copy-on-write: where the vma's start is in the parent's premap area, which this process
  // inherited through fork and moves its slot from (its INHERITED pages in place); 0: none.
  uint64_t inherit_from = 0;
};

struct Plan {
  uint64_t keep_start = 0;
  uint64_t keep_end = 0;
  uint64_t blob_addr = 0;
  uint64_t blob_size = 0;  // page-rounded
  uint64_t arena_addr = 0;
  uint64_t arena_size = 0;  // page-rounded
  uint64_t stack_top = 0;
  // Blob stacks of the other threads, restorer::kThreadStackSize bytes each, right above the
  // leader's: thread i (1-based, as in Process::threads) has its top at stack_top + i * size.
  uint64_t thread_stacks_bytes = 0;
  std::vector<PremapSlot> premap;  // every vma except vdso/vvar, in vma order
  uint64_t vdso_vvar_start = 0;    // 0: the image has no vdso
  // Indexes into `premap` of the slots children inherit pages from: if any, this process fills
  // its memory before it creates its children, and only these slots go to them.
  std::vector<size_t> cow_slots;
};

// A sorted list of [start, end) ranges that are in use.
struct Interval {
  uint64_t start;
  uint64_t end;
};

// Lays the keep region out in the lowest gap above 4 GiB that is free both in `busy` (the target
// layout and cryo's own mappings) and large enough. Pure: tested without processes.
Result<Plan> MakePlan(const model::Process& p, std::vector<Interval> busy, uint64_t blob_bytes,
                      uint64_t arena_bytes);

// Arena bytes needed for `p` (struct plus its arrays).
uint64_t ArenaBytes(const model::Process& p, size_t close_fd_count);

// Checks against the running system: the kernel's vdso/vvar layout matches the image, and every
// mapped file and the executable are still the file that was dumped (size and mtime).
Status CheckRestorable(const model::Process& p);

// The current process's mappings (for MakePlan's busy list).
Result<std::vector<Interval>> SelfMappings();

}  // namespace cryo::restore
