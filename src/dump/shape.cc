#include "dump/shape.h"

#include <unistd.h>

#include "base/io.h"
#include "proc/tasks.h"

namespace cryo::dump {

Result<proc::ProcStatus> CheckSupportedShape(pid_t pid, bool allow_children) {
  auto read = proc::ReadStatus(pid);
  if (!read) {
    if (read.error().sys_errno() == ENOENT) {
      return MakeError(ErrorKind::kInvalidArg, "no process with pid {}", pid);
    }
    return std::unexpected(read.error());
  }
  proc::ProcStatus st = std::move(*read);
  if (st.tgid != pid) {
    return MakeError(ErrorKind::kInvalidArg, "{} is a thread of process {}; dump the process", pid,
                     st.tgid);
  }
  if (st.state == 'Z' || st.state == 'X') {
    return MakeError(ErrorKind::kInvalidArg, "pid {} is a zombie", pid);
  }
  if (st.tracer_pid != 0 && st.tracer_pid != ::getpid()) {
    return MakeError(ErrorKind::kInvalidArg,
                     "pid {} is traced by pid {} (a debugger or tracer); detach it first", pid,
                     st.tracer_pid);
  }
  // Each thread lists the children it forked: look at all of them.
  auto tids = CRYO_TRY_CTX(proc::ListTasks(pid), "pid {}", pid);
  for (pid_t tid : allow_children ? std::vector<pid_t>{} : tids) {
    auto children = ReadWholeFile(fmt::format("/proc/{}/task/{}/children", pid, tid));
    if (children && children->find_first_not_of(" \n") != std::string::npos) {
      return MakeError(
          ErrorKind::kUnsupported,
          "pid {} has child processes ({}); pre-dump of process trees is not supported yet", pid,
          children->substr(0, children->find_last_not_of(" \n") + 1));
    }
  }
  if (st.seccomp == 1) {
    return MakeError(ErrorKind::kUnsupported,
                     "pid {} is in seccomp strict mode, which cannot be restored", pid);
  }
  return st;
}

}  // namespace cryo::dump
