// Strong types shared by every layer: Pid, RemoteAddr (an address in another process), and
// page arithmetic.
#pragma once

#include <fmt/format.h>
#include <sys/types.h>

#include <compare>
#include <cstdint>

namespace cryo {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kPageShift = 12;

constexpr uint64_t PageDown(uint64_t v) { return v & ~(kPageSize - 1); }
constexpr uint64_t PageUp(uint64_t v) { return (v + kPageSize - 1) & ~(kPageSize - 1); }
constexpr bool PageAligned(uint64_t v) { return (v & (kPageSize - 1)) == 0; }

// An address in a tracee's address space: never dereferenced here.
class RemoteAddr {
 public:
  constexpr RemoteAddr() = default;
  constexpr explicit RemoteAddr(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr RemoteAddr operator+(uint64_t d) const { return RemoteAddr(v_ + d); }
  constexpr uint64_t operator-(RemoteAddr o) const { return v_ - o.v_; }
  constexpr auto operator<=>(const RemoteAddr&) const = default;

 private:
  uint64_t v_ = 0;
};

struct Pid {
  pid_t v = 0;
  constexpr auto operator<=>(const Pid&) const = default;
};

}  // namespace cryo

template <>
struct fmt::formatter<cryo::RemoteAddr> : fmt::formatter<uint64_t> {
  auto format(cryo::RemoteAddr a, format_context& ctx) const {
    return fmt::format_to(ctx.out(), "{:#x}", a.value());
  }
};
