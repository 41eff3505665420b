// ParallelFor: runs work(i) for i in [0, n) on up to n threads and returns the first error.
// For bulk page copies, where one core cannot keep up with fresh-memory allocation.
#pragma once

#include <functional>
#include <thread>
#include <vector>

#include "base/error.h"

namespace cryo {

// Number of workers worth starting for memory-bound work on this machine.
inline size_t CopyWorkers() {
  size_t n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : std::min<size_t>(n, 4);
}

inline Status ParallelFor(size_t n, const std::function<Status(size_t)>& work) {
  if (n <= 1) return n == 1 ? work(0) : Status{};
  std::vector<Status> results(n);
  std::vector<std::thread> threads;
  threads.reserve(n - 1);
  for (size_t i = 1; i < n; i++) threads.emplace_back([&, i] { results[i] = work(i); });
  results[0] = work(0);
  for (auto& t : threads) t.join();
  for (auto& r : results) {
    if (!r) return r;
  }
  return {};
}

}  // namespace cryo
