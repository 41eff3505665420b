// The lazy-pages daemon's view of one process it serves (restore/lazy_daemon.h): where its lazy
// areas are now, which image pages it still waits for, and the UFFDIO_COPY that delivers them.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/stopwatch.h"
#include "base/unique_fd.h"
#include "image/pages_file.h"
#include "restore/lazy_source.h"

namespace cryo::restore {

// A registered area: `len` bytes now at `cur` hold image addresses from `image`.
struct Area {
  uint64_t cur = 0;
  uint64_t image = 0;
  uint64_t len = 0;
};

struct Target {
  pid_t pid = 0;  // 0: a child followed through a fork
  UniqueFd uffd;
  UniqueFd pidfd;  // handed-over processes (not forked children): to end them if we fail
  const Source* source = nullptr;
  std::vector<Area> areas;
  IntervalSet pending;  // image addresses not delivered yet
  IntervalSet view;     // image addresses whose content is still the image's (not discarded)
  bool gone = false;
  // Faults that met a changing address space (EAGAIN): answered once the queue is read to its
  // end. Waking them at once would livelock: the kernel hands out faults before events, and
  // the refault would keep the event that ends the change behind it.
  std::vector<std::pair<uint64_t, SteadyClock::time_point>> deferred;
  uint64_t batch = 16;  // pages of the next background batch (doubling up to kBackgroundBatch)

  const Area* ByCur(uint64_t a) const {
    for (const Area& x : areas) {
      if (a >= x.cur && a < x.cur + x.len) return &x;
    }
    return nullptr;
  }
  const Area* ByImage(uint64_t a) const {
    for (const Area& x : areas) {
      if (a >= x.image && a < x.image + x.len) return &x;
    }
    return nullptr;
  }
  // Applies f(image_start, image_end) to the image addresses behind current [s, e).
  template <typename F>
  void EachImage(uint64_t s, uint64_t e, F f) const {
    for (const Area& x : areas) {
      uint64_t a = std::max(s, x.cur), b = std::min(e, x.cur + x.len);
      if (a < b) f(x.image + (a - x.cur), x.image + (b - x.cur));
    }
  }
  // Cuts the areas at s and e (current addresses), so that [s, e) is whole areas.
  void Split(uint64_t s, uint64_t e) {
    std::vector<Area> out;
    for (const Area& x : areas) {
      uint64_t cuts[] = {x.cur, std::clamp(s, x.cur, x.cur + x.len),
                         std::clamp(e, x.cur, x.cur + x.len), x.cur + x.len};
      for (int i = 0; i < 3; i++) {
        if (cuts[i] < cuts[i + 1]) {
          out.push_back({cuts[i], x.image + (cuts[i] - x.cur), cuts[i + 1] - cuts[i]});
        }
      }
    }
    areas = std::move(out);
  }
};

enum class CopyResult { kDone, kAgain, kGone };

// The buffer and decoder cache of one thread, for page sources that are not mapped.
struct ReadBuffer {
  std::vector<std::byte> bytes;
  image::BlockCache cache;
};

// Copies image pages [img, img + pages * 4096) (inside one area and one run) to the target,
// from its mapped pages file or, through `read`, from its other source. `copied` is set to the
// pages copied. kAgain: the address space is changing or an area moved (events first, then
// again); kGone: the process went away, or pages cannot be delivered, described in `fail`.
CopyResult CopyPages(Target& t, uint64_t img, uint64_t pages, uint64_t& copied, std::string& fail,
                     ReadBuffer& read);

// Wakes the threads of t waiting on the page at `addr`.
void Wake(Target& t, uint64_t addr);

}  // namespace cryo::restore
