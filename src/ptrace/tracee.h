// Tracee: one seized thread and the ptrace operations on it. Owns the seize: the destructor
// detaches (leaving the thread running) unless the thread was released or is gone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "model/process.h"

namespace cryo::ptrace {

class Tracee {
 public:
  // PTRACE_SEIZE + PTRACE_INTERRUPT, then waits for the interrupt stop.
  static Result<Tracee> SeizeAndStop(pid_t tid);
  // Adopts a thread the caller already seized (e.g. a restored child seized by cryo).
  static Tracee Adopt(pid_t tid) { return Tracee(tid); }

  Tracee(Tracee&& o) noexcept;
  Tracee& operator=(Tracee&& o) noexcept;
  Tracee(const Tracee&) = delete;
  Tracee& operator=(const Tracee&) = delete;
  ~Tracee();

  pid_t tid() const { return tid_; }

  Result<model::GpRegs> GetRegs() const;
  Status SetRegs(const model::GpRegs& regs) const;
  // The full XSAVE area (NT_X86_XSTATE), in the standard (non-compacted) format.
  Result<std::string> GetXstate() const;
  Status SetXstate(const std::string& xstate) const;
  Result<uint64_t> GetSigmask() const;
  Status SetSigmask(uint64_t mask) const;
  // Pending signals without dequeuing them: the thread's own queue, or the process-wide one.
  Result<std::vector<model::SigInfo>> PeekPending(bool shared) const;

  // Resumes with `request` (PTRACE_SYSCALL, PTRACE_CONT) and waits for the next stop. Returns
  // the wait status. A thread that exits instead gives kTraceeGone.
  Result<int> ResumeAndWait(int request, int sig = 0) const;
  Status Interrupt() const;

  // Ends tracing and lets the thread run. After this the destructor does nothing.
  Status Detach(int sig = 0);
  // SIGKILLs the thread group and waits until the tracee is dead (reported by waitpid).
  Status KillAndWait();
  // Forget the tracee without touching it (it is already gone).
  void Forget() { tid_ = -1; }

 private:
  explicit Tracee(pid_t tid) : tid_(tid) {}
  pid_t tid_ = -1;
};

// Waits for a stop (or death) of `tid` with __WALL. Returns the raw status.
Result<int> WaitStop(pid_t tid);

}  // namespace cryo::ptrace
