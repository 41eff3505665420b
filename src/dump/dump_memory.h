// Memory of a frozen process into the image: finds the pages that hold data (PAGEMAP_SCAN),
// copies them into pages-<pid>.img and records the runs in the process's pagemap. With a dirty
// tracker, pages of tracked mappings not written since the parent image are recorded as
// in-parent instead of copied.
#pragma once

#include <span>
#include <vector>

#include "base/error.h"
#include "dump/capture_mm.h"
#include "image/pages_file.h"
#include "mem/page_copy.h"
#include "mem/uffd_tracker.h"
#include "model/process.h"

namespace cryo::dump {

struct MemoryStats {
  uint64_t pages_scanned = 0;    // pages of private mappings looked at
  uint64_t pages_written = 0;    // pages stored
  uint64_t pages_unchanged = 0;  // pages with data left in the parent image
  uint64_t pages_hot = 0;        // pages of hot ranges: unprotected, stored every round
  uint64_t pages_zero = 0;       // mapping the shared zero page (read, never written): skipped
  uint64_t pages_inherited = 0;  // the tree parent's very pages (copy-on-write): not stored
  uint64_t pages_lazy = 0;       // left to the page server (post-copy): not stored
  uint64_t bytes_written = 0;    // size of the pages file
  uint64_t bytes_content = 0;    // page content stored: bytes_written before compression
  model::PageCodec codec = model::PageCodec::kNone;
  uint64_t pages_gone = 0;  // dropped by the running process during the copy (pre-dump)
  double scan_seconds = 0;
  double copy_seconds = 0;
};

// One round of dirty tracking (pre-dump, or a dump with a parent image).
struct TrackingRound {
  mem::UffdTracker* tracker = nullptr;
  bool has_parent = false;  // the vmas marked UffdOwner::kOurs were tracked since the parent
  bool track_new = true;    // register mappings not tracked yet (false: final dump)
  // Pages with content in the parent image: only those can be left there. (A page can appear
  // without being reported written, e.g. filled with zeros on a read fault of a protected hole.)
  std::vector<mem::PageRange> parent_coverage;
  std::vector<mem::PageRange> tracked;  // out: every range registered after this round
  // Hot ranges (TrackingState::hot): in, the parent round's; out, this round's. `cool`: this
  // round arms the parent's hot ranges again (they become hot again only if still written).
  std::vector<mem::PageRange> hot;
  bool cool = false;
  std::vector<mem::PageRange> hot_out;
};

// A tracked chunk of this many bytes (aligned) becomes hot when a round finds at least
// kHotFraction of its pages written; hot ranges are re-armed every kCoolEvery rounds.
inline constexpr uint64_t kHotChunk = 2ull << 20;
inline constexpr double kHotFraction = 0.75;
inline constexpr uint32_t kCoolEvery = 8;

// What to copy; decided while the process is frozen, copied then or after it resumed.
struct MemoryPlan {
  std::vector<mem::CopySource> sources;
  image::CompressOptions compress;  // how to store the pages file (set before CopyMemory)
};

// Scans the private mappings of frozen `p` (vmas captured, `owners` parallel to them or empty),
// fills p.pagemap and p.pages_file and returns what to copy. `round` may be null. With
// `tree_parent` (captured, and frozen with `p`), the pages `p` still shares with it copy-on-write
// are recorded as kPageInherited instead of copied.
Result<MemoryPlan> PlanMemory(model::Process& p, std::span<const UffdOwner> owners,
                              TrackingRound* round, MemoryStats& stats,
                              const model::Process* tree_parent = nullptr);
// Post-copy (dump --lazy-pages): the PRESENT runs of mappings lazy restore can serve
// (model::LazyEligible) become LAZY runs with no content in the image, served from the frozen
// process later (dump/page_server.h); their copies leave the plan, the others' file offsets
// close up. Returns the ranges left lazy.
std::vector<mem::PageRange> LeaveLazy(model::Process& p, MemoryPlan& plan);

// Copies the plan into pages-<pid>.img of directory `dir_fd`, compressed in blocks on the copy
// workers if the plan says so (then recorded in p.pages_compression). `running`: the process was
// resumed after the plan (pre-dump); pages it dropped since are stored as zeros (see
// mem::CopyPages).
Status CopyMemory(int dir_fd, model::Process& p, const MemoryPlan& plan, MemoryStats& stats,
                  bool running = false);

// PlanMemory without tracking, then CopyMemory.
Result<MemoryStats> DumpMemory(int dir_fd, model::Process& p);

}  // namespace cryo::dump
