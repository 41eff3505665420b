// RemoteBatch: many system calls run in a stopped tracee for the price of one resume. Calling
// them one by one (RemoteSyscalls::Call) stops the thread at each call's entry and exit: four
// context switches per call, about 10 us on an idle machine and up to 0.6 ms on a busy one, and a
// dump makes about a hundred (sigactions, limits, timers). A batch writes x86-64 code into
// executable scratch memory that makes the calls in order, stores each result and ends in int3.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "base/error.h"
#include "ptrace/remote_syscalls.h"

namespace cryo::ptrace {

class RemoteBatch {
 public:
  // Queues syscall `nr` and returns its index. With `out_size` > 0, argument `out_arg` becomes
  // the address of `out_size` bytes of scratch memory, zeroed, that the call may write (Out).
  size_t Add(long nr, std::array<uint64_t, 6> args, uint32_t out_size = 0, int out_arg = 0);

  // Runs every queued call in the thread `rs` drives, in order, using `scratch` (mapped in that
  // thread's process). In one go if the scratch is executable and SIGTRAP is neither ignored nor
  // pending in the thread (the kernel resets the action of a forced signal it cannot deliver);
  // otherwise one Call at a time, with the same results. The calls run whatever they return: a
  // failure is the caller's to judge from Result.
  Status Run(RemoteSyscalls& rs, const RemoteScratch& scratch, pid_t tid);
  // Whether the last Run went in one go (for tests).
  bool ran_as_code() const { return ran_as_code_; }

  // The kernel's result of call `i` (a negative errno on failure).
  int64_t Result(size_t i) const { return calls_.at(i).result; }
  // The bytes call `i` wrote to its output area, as a T (sizeof(T) <= its out_size).
  template <class T>
  T Out(size_t i) const {
    T v{};
    const Call& c = calls_.at(i);
    std::memcpy(&v, out_.data() + c.out_at, std::min<size_t>(sizeof(T), c.out_size));
    return v;
  }

  // Exposed for tests: the code for calls `calls` at remote `base`, results from `results` on.
  struct Call {
    long nr = 0;
    std::array<uint64_t, 6> args{};
    uint32_t out_size = 0;
    int out_arg = 0;
    size_t out_at = 0;  // offset of its output in out_
    int64_t result = 0;
  };
  static std::vector<uint8_t> Code(std::span<const Call> calls, std::span<const uint64_t> out_addrs,
                                   uint64_t results);

 private:
  Status RunAsCode(RemoteSyscalls& rs, const RemoteScratch& scratch);
  Status RunOneByOne(RemoteSyscalls& rs, const RemoteScratch& scratch);
  std::vector<Call> calls_;
  std::vector<std::byte> out_;  // every call's output area, back to back
  bool ran_as_code_ = false;
};

}  // namespace cryo::ptrace
