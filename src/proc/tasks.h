// Thin readers of live /proc directories and links: the threads and fds of a process, and the
// target of a /proc symlink (cwd, root, exe, fd/N). Unlike the parsers these touch the system.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/error.h"

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

}  // namespace cryo::proc
