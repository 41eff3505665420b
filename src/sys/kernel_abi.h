// Kernel structures that glibc hides behind its own versions: what the raw system calls (or a
// tracee, through remote syscalls) read and write.
#pragma once

#include <cstdint>

namespace cryo::sys {

// struct sigaction as rt_sigaction(2) takes it (glibc's differs and replaces sa_restorer).
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

}  // namespace cryo::sys
