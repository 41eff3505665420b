// dump: freeze → capture → memory → write → kill or resume. The one entry point of the dump side.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>

#include "base/error.h"
#include "image/pages_file.h"

namespace cryo::dump {

struct DumpStats;

struct DumpOptions {
  pid_t pid = 0;
  std::string images_dir;
  bool leave_running = false;
  // A pre-dump image of this process, relative to images_dir: only pages written since it are
  // stored, and its dirty tracker is removed from the process.
  std::optional<std::string> prev_images_dir;
  // With leave_running: keep (or start) dirty tracking in the process and write tracking.json,
  // so this image can be the parent of a later pre-dump or dump.
  bool track_mem = false;
  // Established TCP connections are dumped (TCP repair under a network lock, docs/network.md)
  // instead of refused.
  bool tcp_established = false;
  image::CompressOptions compress;  // --compress: pages file in compressed blocks
  // -j: the process's controlling terminal is the caller's (a shell job); restore gives it the
  // restoring cryo's terminal. Without it such a process is refused.
  bool shell_job = false;
  // --lazy-pages (post-copy, docs/page-server.md): pages lazy restore can deliver are not
  // copied; the frozen processes serve them on `address`:`port` to `cryo lazy-pages
  // --page-server` and are killed once it has them all.
  bool lazy_pages = false;
  std::string address = "127.0.0.1";
  uint16_t port = 0;
  // cryo migrate: serve on this connection (already made) instead of accepting on `port`, after
  // on_image has sent the image over it.
  int lazy_conn = -1;
  std::function<Status(const DumpStats&)> on_image;
};

struct DumpStats {
  double frozen_seconds = 0;
  double total_seconds = 0;
  double capture_seconds = 0;
  double memory_scan_seconds = 0;
  double memory_copy_seconds = 0;
  double write_seconds = 0;
  uint64_t pages_scanned = 0;
  uint64_t pages_written = 0;
  uint64_t pages_skipped = 0;    // scanned but holding no data (never touched, zero, file-backed)
  uint64_t pages_unchanged = 0;  // holding data not written since the parent image: not stored
  uint64_t pages_hot = 0;        // in hot ranges (see TrackingState::hot): stored every round
  uint64_t pages_inherited = 0;  // a tree parent's very pages (copy-on-write): not stored
  uint64_t pages_lazy = 0;       // left in the process for the page server (--lazy-pages)
  // Shared-memory objects (stored whole in every dump) and their content, in pages-shmem.img.
  uint64_t shmem_objects = 0;
  uint64_t shmem_bytes = 0;
  double shmem_copy_seconds = 0;
  uint64_t pages_zero = 0;     // of the skipped: mapping the shared zero page
  uint64_t bytes_written = 0;  // size of the pages file
  uint64_t bytes_content = 0;  // page content in it, before compression
  std::string compression = "none";
};

// Dumps the process `opts.pid`. On any failure the process keeps running as it was; the partial
// image directory is left for inspection. Writes stats-dump.json into the image directory.
Result<DumpStats> Dump(const DumpOptions& opts);

}  // namespace cryo::dump
