// RemoteSyscalls: runs system calls inside a stopped tracee (rr's idea, our code). The thread is
// pointed at an existing `syscall` instruction, stepped through the syscall with PTRACE_SYSCALL,
// and put back exactly as it was. Signals are blocked in the tracee meanwhile so that none is
// consumed by us; they stay pending and are seen by the capture that follows.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>

#include "base/error.h"
#include "base/types.h"
#include "model/process.h"
#include "ptrace/tracee.h"

namespace cryo::ptrace {

// Finds the address of a `syscall` instruction (0f 05) in an executable mapping of `pid`,
// preferring the vdso. Any such byte pair will do: execution stops at the syscall exit.
Result<RemoteAddr> FindSyscallGadget(pid_t pid);

class RemoteSyscalls {
 public:
  // `tracee` must be at an interrupt stop and outlive this object.
  static Result<RemoteSyscalls> Start(const Tracee& tracee, RemoteAddr gadget);
  RemoteSyscalls(RemoteSyscalls&& o) noexcept;
  RemoteSyscalls& operator=(RemoteSyscalls&&) = delete;
  ~RemoteSyscalls();

  // Runs syscall `nr`; returns the raw kernel result (a negative errno on failure).
  Result<int64_t> Call(long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                       uint64_t a4 = 0, uint64_t a5 = 0);
  // Runs machine code the caller wrote into the tracee at `entry` until it traps with int3 at
  // `end` - 1 (so it stops with the instruction pointer at `end`). The thread runs with every
  // signal but SIGTRAP blocked. Preconditions (see RemoteBatch): SIGTRAP is neither ignored nor
  // pending in the thread, as the kernel would otherwise reset its action for the trap.
  Status RunUntilTrap(RemoteAddr entry, RemoteAddr end);
  // Restores registers and signal mask and returns the thread to an interrupt stop, so that the
  // kernel's syscall-restart handling still applies to its saved registers when it resumes.
  Status Finish();
  // Leaves the thread as the last call left it (at a syscall-exit stop) for the caller to set
  // up; Finish will not run.
  void Abandon() { active_ = false; }

  const model::GpRegs& saved_regs() const { return saved_regs_; }
  uint64_t saved_sigmask() const { return saved_mask_; }

 private:
  RemoteSyscalls(const Tracee* t, RemoteAddr gadget, model::GpRegs regs, uint64_t mask)
      : tracee_(t), gadget_(gadget), saved_regs_(regs), saved_mask_(mask) {}
  const Tracee* tracee_;
  RemoteAddr gadget_;
  model::GpRegs saved_regs_;
  uint64_t saved_mask_;
  bool dirty_ = false;  // registers were changed: Finish must put them back
  bool active_ = true;
};

// Anonymous scratch memory mapped in the tracee; unmapped when destroyed.
class RemoteScratch {
 public:
  // With `exec`, the memory is also executable if the process allows it (a W^X policy such as
  // PR_SET_MDWE or an mmap seccomp filter refuses it): see executable().
  static Result<RemoteScratch> Map(RemoteSyscalls& rs, pid_t pid, uint64_t size, bool exec = false);
  RemoteScratch(RemoteScratch&& o) noexcept;
  RemoteScratch& operator=(RemoteScratch&&) = delete;
  ~RemoteScratch();

  RemoteAddr addr() const { return addr_; }
  uint64_t size() const { return size_; }
  bool executable() const { return exec_; }
  pid_t pid() const { return pid_; }
  Status Write(uint64_t offset, std::span<const std::byte> data) const;
  Status Read(uint64_t offset, std::span<std::byte> out) const;
  Status Unmap();

 private:
  RemoteScratch(RemoteSyscalls* rs, pid_t pid, RemoteAddr a, uint64_t size, bool exec)
      : rs_(rs), pid_(pid), addr_(a), size_(size), exec_(exec) {}
  RemoteSyscalls* rs_;
  pid_t pid_;
  RemoteAddr addr_;
  uint64_t size_;
  bool exec_;
};

}  // namespace cryo::ptrace
