// Thin readers of live /proc: the threads and fds of a process, the target of a /proc symlink
// (cwd, root, exe, fd/N), and status/stat read and parsed. Unlike the parsers these touch the
// system.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "proc/stat.h"
#include "proc/status.h"

namespace cryo::proc {

// Thread ids in /proc/PID/task, ascending. A snapshot: threads may come and go while it is
// taken, so a freezer must rescan until stable. kTraceeGone (errno ENOENT/ESRCH) when the process
// no longer exists, kSys otherwise.
Result<std::vector<pid_t>> ListTasks(pid_t pid);

// Open fd numbers in /proc/PID/fd, ascending. For the calling process the fd used to read the
// directory is left out. Errors as ListTasks.
Result<std::vector<int>> ListFds(pid_t pid);

// readlink(2) of `path` with no length limit. The text is the kernel's, e.g. "/x (deleted)",
// "pipe:[123]", "anon_inode:[eventfd]". kTraceeGone for ENOENT/ESRCH under /proc, kSys otherwise.
Result<std::string> ReadLink(const std::string& path);

// /proc/PID/status and /proc/PID/stat, read and parsed. kTraceeGone (errno kept) when the process
// no longer exists, kSys for other read errors, kInternal for text that does not parse.
Result<ProcStatus> ReadStatus(pid_t pid);
Result<ProcStat> ReadStat(pid_t pid);

}  // namespace cryo::proc
