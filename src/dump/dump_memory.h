// Memory of a frozen process into the image: finds the pages that hold data (PAGEMAP_SCAN),
// copies them into pages-<pid>.img and records the runs in the process's pagemap.
#pragma once

#include "base/error.h"
#include "model/process.h"

namespace cryo::dump {

struct MemoryStats {
  uint64_t pages_scanned = 0;  // pages of private mappings looked at
  uint64_t pages_written = 0;  // pages stored
  uint64_t bytes_written = 0;
  double scan_seconds = 0;
  double copy_seconds = 0;
};

// `dir_fd` is the image directory. Fills p.pagemap and p.pages_file.
Result<MemoryStats> DumpMemory(int dir_fd, model::Process& p);

}  // namespace cryo::dump
