// pre-dump: copies a running process's memory into an image while tracking which pages it
// writes, so that the next round (pre-dump or dump with --prev-images-dir) stores only those.
// The process is frozen only to read its mappings, scan and re-arm the tracker; the copy runs
// after it resumed (pages written meanwhile are re-protected, so the next round copies them).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/error.h"
#include "dump/dump.h"

namespace cryo::dump {

struct PreDumpOptions {
  pid_t pid = 0;
  std::string images_dir;
  std::optional<std::string> prev_images_dir;  // relative to images_dir
  image::CompressOptions compress;
};

// Writes inventory.img, pagemap-<pid>.img, pages-<pid>.img, tracking.json and stats-dump.json.
// The process keeps running; its tracker stays open in it for the next round.
Result<DumpStats> PreDump(const PreDumpOptions& opts);

}  // namespace cryo::dump
