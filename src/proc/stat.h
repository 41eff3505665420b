// Parser of /proc/PID/stat (or /proc/PID/task/TID/stat): the one-line record with the mm layout
// fields (code, data, brk, args, env, stack) that restore hands to PR_SET_MM_MAP.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace cryo::proc {

struct ProcStat {
  pid_t pid = 0;
  std::string comm;  // raw: the kernel does not escape it here (it may hold ' ', ')' or '\n')
  char state = '?';
  pid_t ppid = 0, pgrp = 0, session = 0;
  int tty_nr = 0;
  // Zero (or 1 for the code fields) when the reader may not ptrace the task: the kernel hides
  // the layout then.
  uint64_t start_code = 0, end_code = 0, start_stack = 0, start_data = 0, end_data = 0,
           start_brk = 0, arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  int exit_signal = 0;
  int num_threads = 0;
  uint64_t start_time = 0;  // clock ticks after boot
  int exit_code = 0;        // a zombie's wait status (field 52)
};

// Parses the line "pid (comm) state ppid ...". comm is what lies between the first '(' and the
// LAST ')', since comm itself may contain both. All 52 fields of Linux >= 3.5 must be present;
// otherwise, or when a field we read is not a number, a kInternal error quotes the text.
Result<ProcStat> ParseStat(std::string_view text);

}  // namespace cryo::proc
