// Restore of terminal fds: pseudo-terminal pairs are created anew (the pts number may differ
// from the dumped one) with their termios, window size, packet mode and lock state; the caller's
// terminal (--shell-job) is the restoring cryo's controlling terminal.
#pragma once

#include <map>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "model/process.h"

namespace cryo::restore {

// Before anything is created: an image with kCallerTty fds needs --shell-job (`shell_job`), and
// cryo must then have a controlling terminal. kInvalidArg naming the fd otherwise.
Status CheckShellJob(const model::Process& p, bool shell_job);

// The pty pairs of one process, like PipeSet: the first fd of a pair creates it (master from
// /dev/ptmx, every slave fd of the image opened before a lock is set again); later fds of the
// pair take their end. Held fds live at or above `floor`.
class PtySet {
 public:
  PtySet(const std::vector<model::Fd>& fds, int floor) : fds_(fds), floor_(floor) {}

  // An fd for `f` (kPtyMaster or kPtySlave).
  Result<UniqueFd> Open(const model::Fd& f);

 private:
  Status Create(uint32_t index);

  const std::vector<model::Fd>& fds_;
  int floor_;
  std::map<uint32_t, bool> created_;  // dumped index -> pair made
  std::map<int, UniqueFd> prepared_;  // image fd number -> its new fd, waiting to be installed
};

// An fd for `f` (kCallerTty): a new open of cryo's controlling terminal with the image's flags
// and termios; the process's group becomes the terminal's foreground group if it was at dump
// (the caller blocks SIGTTOU, so the change is allowed from the background).
Result<UniqueFd> OpenCallerTty(const model::Fd& f);

}  // namespace cryo::restore
