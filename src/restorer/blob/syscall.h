// Raw x86-64 Linux system calls for the freestanding restorer blob: no libc, no errno. Every
// call returns the kernel's value; -4095..-1 is a negative errno, anything else is a result.
#pragma once

#include <asm/unistd_64.h>
#include <stdint.h>

namespace cryo::restorer::blob {

inline long Syscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                    long a6 = 0) {
  register long rax asm("rax") = nr;
  register long rdi asm("rdi") = a1;
  register long rsi asm("rsi") = a2;
  register long rdx asm("rdx") = a3;
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  register long r9 asm("r9") = a6;
  // The kernel clobbers rcx (return rip) and r11 (rflags); "memory" because calls read and write
  // buffers we pass by address.
  asm volatile("syscall"
               : "+r"(rax)
               : "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return rax;
}

inline bool IsError(long ret) { return ret < 0 && ret >= -4095; }

template <typename T>
inline long Arg(T* p) {
  return reinterpret_cast<long>(p);
}

}  // namespace cryo::restorer::blob
