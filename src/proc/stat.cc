#include "proc/stat.h"

#include <array>
#include <limits>

#include "proc/text.h"

namespace cryo::proc {
namespace {

// Field numbers as in proc(5): 1 is pid, 2 is comm, 3 is state.
constexpr size_t kFirstAfterComm = 3;
constexpr size_t kLastField = 52;  // exit_code, the last field since Linux 3.5
constexpr size_t kPpid = 4, kPgrp = 5, kSession = 6, kTtyNr = 7, kNumThreads = 20, kStartTime = 22,
                 kStartCode = 26, kEndCode = 27, kStartStack = 28, kExitSignal = 38,
                 kStartData = 45, kEndData = 46, kStartBrk = 47, kArgStart = 48, kArgEnd = 49,
                 kEnvStart = 50, kEnvEnd = 51, kExitCode = 52;

template <typename T>
bool SignedField(std::string_view s, T* out) {
  auto v = ParseInt(s);
  if (!v || *v < std::numeric_limits<T>::min() || *v > std::numeric_limits<T>::max()) return false;
  *out = static_cast<T>(*v);
  return true;
}

bool UnsignedField(std::string_view s, uint64_t* out) {
  auto v = ParseUint(s, 10);
  if (!v) return false;
  *out = *v;
  return true;
}

}  // namespace

Result<ProcStat> ParseStat(std::string_view text) {
  auto bad = [&](std::string_view what) { return BadLine("stat", 1, what, text); };
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return bad("no (comm)");
  }
  ProcStat st;
  if (!SignedField(TrimSpace(text.substr(0, open)), &st.pid)) return bad("bad pid");
  st.comm = std::string(text.substr(open + 1, close - open - 1));

  // fields[n] is field number n; 0..2 stay empty.
  std::array<std::string_view, kLastField + 1> fields{};
  std::string_view rest = text.substr(close + 1);
  size_t n = kFirstAfterComm;
  for (std::string_view t = NextToken(&rest); !t.empty(); t = NextToken(&rest)) {
    if (n <= kLastField) fields[n] = t;
    ++n;
  }
  if (n <= kLastField) return bad("too few fields");

  if (fields[kFirstAfterComm].size() != 1) return bad("bad state");
  st.state = fields[kFirstAfterComm][0];
  bool ok = SignedField(fields[kPpid], &st.ppid) && SignedField(fields[kPgrp], &st.pgrp) &&
            SignedField(fields[kSession], &st.session) && SignedField(fields[kTtyNr], &st.tty_nr) &&
            SignedField(fields[kNumThreads], &st.num_threads) &&
            UnsignedField(fields[kStartTime], &st.start_time) &&
            UnsignedField(fields[kStartCode], &st.start_code) &&
            UnsignedField(fields[kEndCode], &st.end_code) &&
            UnsignedField(fields[kStartStack], &st.start_stack) &&
            SignedField(fields[kExitSignal], &st.exit_signal) &&
            UnsignedField(fields[kStartData], &st.start_data) &&
            UnsignedField(fields[kEndData], &st.end_data) &&
            UnsignedField(fields[kStartBrk], &st.start_brk) &&
            UnsignedField(fields[kArgStart], &st.arg_start) &&
            UnsignedField(fields[kArgEnd], &st.arg_end) &&
            UnsignedField(fields[kEnvStart], &st.env_start) &&
            UnsignedField(fields[kEnvEnd], &st.env_end) &&
            SignedField(fields[kExitCode], &st.exit_code);
  if (!ok) return bad("bad number");
  return st;
}

}  // namespace cryo::proc
