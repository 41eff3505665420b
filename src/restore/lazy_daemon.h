// `cryo lazy-pages -D DIR`: the daemon that delivers the lazy pages of processes restored with
// `cryo restore --lazy-pages` (docs/lazy-pages.md). It listens on DIR/lazy-pages.sock, takes each
// process's userfaultfd from its restore child, answers page faults first and fills the rest in
// the background in large batches, follows forks, moves, unmaps and discards of areas not filled
// yet (userfaultfd's non-cooperative events), and exits once every page was delivered or every
// lazy process has exited.
#pragma once

#include <string>

#include "base/error.h"

namespace cryo::restore {

struct LazyPagesOptions {
  std::string images_dir;
  // How long to wait for the processes of the image to be handed over before giving up.
  double wait_seconds = 60;
  // Background fill starts this long after the restore says the processes run (faults are
  // answered at once): leaves the pages to the process's own faults first.
  double fill_delay_seconds = 0;
  // ADDRESS:PORT of the source (`cryo dump --lazy-pages`) for pages the image holds as LAZY
  // only; empty: every lazy page is in the image's pages files.
  std::string page_server;
  // The same, already connected (cryo migrate-receive hands its connection over): -1 for none.
  int page_server_fd = -1;
  // A listening socket from ListenLazySocket(images_dir) to adopt instead of binding one
  // (migrate-receive starts the restore without waiting for the daemon to listen): -1 for none.
  int listen_fd = -1;
  // --lazy-parent-pages, as given to the restore: pages of parent images are lazy too, read from
  // the image chain here.
  bool parent_pages = false;
};

struct LazyPagesStats {
  uint64_t processes = 0;         // handed over by restore
  uint64_t forks = 0;             // children followed through UFFD_EVENT_FORK
  uint64_t faults = 0;            // page faults answered
  uint64_t pages_on_fault = 0;    // copied to answer a fault (with the pages read ahead)
  uint64_t pages_background = 0;  // copied by the background fill
  uint64_t zero_pages = 0;        // faults answered with a zero page (no lazy content there)
  uint64_t events = 0;            // remap, remove and unmap events
  double fault_us_median = 0;     // from reading the fault to the copy that wakes it
  double fault_us_p99 = 0;
  double background_gibps = 0;  // background fill throughput
  double seconds = 0;           // from the running notice (or its fallback) to the last page
  bool running_notice = false;  // the restore said its processes run (restore/lazy.h)
};

// Serves until done; writes DIR/stats-lazy.json.
Result<LazyPagesStats> RunLazyPages(const LazyPagesOptions& opts);

}  // namespace cryo::restore
