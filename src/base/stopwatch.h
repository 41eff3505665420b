// Seconds elapsed since a steady-clock time point: the one way phases are timed for stats.
#pragma once

#include <chrono>

namespace cryo {

using SteadyClock = std::chrono::steady_clock;

inline double SecondsSince(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

}  // namespace cryo
