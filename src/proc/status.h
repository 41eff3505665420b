// Parser of /proc/PID/status (or /proc/PID/task/TID/status): identity, credentials, namespace
// pids, signal masks and capabilities of one task. Pure: takes the text, touches nothing live.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace cryo::proc {

struct ProcStatus {
  std::string name;  // unescaped: the kernel writes '\n' as "\n" and '\\' as "\\" here
  char state = '?';  // the letter of "State:", e.g. 'S' of "S (sleeping)"
  pid_t tgid = 0, pid = 0, ppid = 0, tracer_pid = 0;
  uint32_t umask = 022;
  bool has_umask = false;                  // "Umask:" exists since Linux 4.7
  std::array<uint32_t, 4> uids{}, gids{};  // real, effective, saved, filesystem
  std::vector<uint32_t> groups;            // supplementary groups
  std::vector<pid_t> nspid;  // pid in each pid namespace, outermost (the reader's) first
  int threads = 0;
  // Signal sets as bit masks (bit n-1 = signal n). sig_pnd and sig_blk are the task's own,
  // shd_pnd is the process-wide pending set.
  uint64_t sig_pnd = 0, shd_pnd = 0, sig_blk = 0, sig_ign = 0, sig_cgt = 0;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  int no_new_privs = 0;
  int seccomp = 0;  // 0 off, 1 strict, 2 filter
};

// Parses the whole text. Name, State, Tgid, Pid, PPid, Uid and Gid must be present; every other
// field keeps its default when absent (older kernels). A malformed value of a field we read is a
// kInternal error quoting the line; fields we do not read are not checked.
Result<ProcStatus> ParseStatus(std::string_view text);

}  // namespace cryo::proc
