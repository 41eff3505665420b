#include <optional>
#include <string_view>

#include "dump/fd_kinds.h"
#include "proc/text.h"

namespace cryo::dump {
namespace {

// "(sec, nsec)" as fdinfo prints a timespec.
std::optional<uint64_t> ParseTimespec(std::string_view s) {
  if (s.size() < 2 || s.front() != '(' || s.back() != ')') return std::nullopt;
  s = s.substr(1, s.size() - 2);
  size_t comma = s.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  auto sec = proc::ParseUint(proc::TrimSpace(s.substr(0, comma)));
  auto nsec = proc::ParseUint(proc::TrimSpace(s.substr(comma + 1)));
  if (!sec || !nsec) return std::nullopt;
  return *sec * 1'000'000'000ull + *nsec;
}

}  // namespace

// The kernel prints it_value as the time left, whatever flags armed the timer: restore re-arms
// it relative, so it fires that long after the restore.
Status CaptureTimerfd(const proc::FdInfo& info, model::Fd& out) {
  auto field = [&](std::string_view key) -> const std::string* { return info.Find(key); };
  const std::string* clock = field("clockid");
  const std::string* ticks = field("ticks");
  const std::string* value = field("it_value");
  const std::string* interval = field("it_interval");
  auto clockid = clock ? proc::ParseUint(*clock) : std::nullopt;
  auto nticks = ticks ? proc::ParseUint(*ticks) : std::nullopt;
  auto value_ns = value ? ParseTimespec(*value) : std::nullopt;
  auto interval_ns = interval ? ParseTimespec(*interval) : std::nullopt;
  if (!clockid || !nticks || !value_ns || !interval_ns) {
    return MakeError(ErrorKind::kInternal, "fd {}: timerfd fdinfo lacks clockid, ticks or times",
                     out.fd);
  }
  out.clockid = static_cast<int32_t>(*clockid);
  out.counter = *nticks;
  out.value_ns = *value_ns;
  out.interval_ns = *interval_ns;
  return {};
}

}  // namespace cryo::dump
