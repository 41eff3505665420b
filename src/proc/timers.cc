#include "proc/timers.h"

#include <signal.h>

#include <algorithm>
#include <charconv>
#include <string>

namespace cryo::proc {
namespace {

template <typename T>
bool Number(std::string_view s, T* out, int base = 10) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

std::unexpected<Error> Bad(std::string_view line) {
  return MakeError(ErrorKind::kInternal, "/proc timers: cannot read line '{}'", line);
}

// "signal: 10/0000000000001234"
bool ParseSignal(std::string_view v, TimerEntry& e) {
  size_t slash = v.find('/');
  return slash != std::string_view::npos && Number(v.substr(0, slash), &e.signo) &&
         Number(v.substr(slash + 1), &e.sigval, 16);
}

// "notify: signal/pid.123", "none/pid.123", "thread/pid.123" (SIGEV_THREAD, not made by the
// kernel's users any more), "signal/tid.123" (SIGEV_THREAD_ID).
bool ParseNotify(std::string_view v, TimerEntry& e) {
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view how = v.substr(0, slash), who = v.substr(slash + 1);
  bool tid = who.starts_with("tid.");
  if (!tid && !who.starts_with("pid.")) return false;
  if (!Number(who.substr(4), &e.notify_pid)) return false;
  if (how == "signal") {
    e.notify = tid ? SIGEV_THREAD_ID : SIGEV_SIGNAL;
  } else if (how == "none") {
    e.notify = SIGEV_NONE;
  } else if (how == "thread") {
    e.notify = SIGEV_THREAD;
  } else {
    return false;
  }
  return true;
}

}  // namespace

Result<std::vector<TimerEntry>> ParseTimers(std::string_view text) {
  std::vector<TimerEntry> out;
  int have = 0;  // bits: 1 ID, 2 signal, 4 notify, 8 ClockID of the current block
  auto finish = [&]() -> Status {
    if (have != 0 && have != 15) {
      return MakeError(ErrorKind::kInternal, "/proc timers: incomplete entry for timer {}",
                       out.back().id);
    }
    return {};
  };
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) return Bad(line);
    std::string_view key = line.substr(0, colon), value = line.substr(colon + 2);
    if (key == "ID") {
      CRYO_TRYV(finish());
      out.push_back({});
      have = 1;
      if (!Number(value, &out.back().id)) return Bad(line);
      continue;
    }
    if (out.empty()) return Bad(line);
    TimerEntry& e = out.back();
    if (key == "signal" && ParseSignal(value, e)) {
      have |= 2;
    } else if (key == "notify" && ParseNotify(value, e)) {
      have |= 4;
    } else if (key == "ClockID" && Number(value, &e.clockid)) {
      have |= 8;
    } else {
      return Bad(line);
    }
  }
  CRYO_TRYV(finish());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

}  // namespace cryo::proc
