// restore: read → check → plan → fork with the target's PID → child rebuilds → blob → final
// registers → running. The one entry point of the restore side.
#pragma once

#include <string>

#include "base/error.h"

namespace cryo::restore {

struct RestoreOptions {
  std::string images_dir;
  bool detach = false;           // -d: return once the process runs instead of waiting for it
  double pid_wait_seconds = 10;  // how long to wait for the target PID to become free
  bool tcp_established = false;  // the image may hold established TCP connections
  // -j: the image's controlling-terminal fds get the restoring cryo's terminal, and the process
  // becomes its foreground group if it was at dump. Without it such an image is refused.
  bool shell_job = false;
  // --lazy-pages: private anonymous memory written since the last pre-dump is left to the
  // lazy-pages daemon (restore/lazy_daemon.h) listening in the image directory.
  bool lazy_pages = false;
  // --lazy-parent-pages: with lazy_pages, pages of parent images (pre-dump rounds) are delivered
  // by the daemon (started with the same flag) after the process runs too, not filled before.
  bool lazy_parent_pages = false;
};

struct RestoreResult {
  pid_t pid = 0;
  int exit_status = 0;         // when !detach: the restored process's exit code (128+sig if killed)
  double restore_seconds = 0;  // from start until the process runs, less pid_wait_seconds
  double pid_wait_seconds = 0;  // waiting for the dumped process's PID to be released
  // Phases of restore_seconds: reading and checking the images, planning (shared files and
  // memory, premap regions, lazy areas), and the tree rebuilding itself until it runs.
  double read_seconds = 0, plan_seconds = 0, tree_seconds = 0;
};

// On failure no restored process is left behind.
Result<RestoreResult> Restore(const RestoreOptions& opts);

}  // namespace cryo::restore
