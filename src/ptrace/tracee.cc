#include "ptrace/tracee.h"

#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "base/log.h"

namespace cryo::ptrace {

static_assert(sizeof(model::GpRegs) == sizeof(user_regs_struct));

namespace {
constexpr size_t kMaxXstate = 64 * 1024;

Error GoneOr(int err, std::string what) {
  if (err == ESRCH) return Error(ErrorKind::kTraceeGone, std::move(what), err);
  return Error(ErrorKind::kSys, std::move(what), err);
}
}  // namespace

Result<int> WaitStop(pid_t tid) {
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(tid, &status, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError("waitpid {}", tid);
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      return MakeError(ErrorKind::kTraceeGone, "thread {} exited (status {:#x})", tid, status);
    }
    return status;
  }
}

Result<Tracee> Tracee::SeizeAndStop(pid_t tid) {
  if (::ptrace(PTRACE_SEIZE, tid, nullptr, PTRACE_O_TRACESYSGOOD) < 0) {
    return std::unexpected(GoneOr(errno, fmt::format("ptrace seize {}", tid)));
  }
  Tracee t(tid);
  CRYO_TRYV(t.Interrupt());
  // The thread may report a signal-delivery stop first (a signal was pending); those signals
  // must not be lost, so pass them on and wait for our interrupt stop.
  for (int i = 0; i < 64; i++) {
    int status = CRYO_TRY_CTX(WaitStop(tid), "wait for seized thread {}", tid);
    if (!WIFSTOPPED(status)) continue;
    if ((status >> 16) == PTRACE_EVENT_STOP) return t;
    int sig = WSTOPSIG(status);
    log::Debug("thread {}: signal-delivery stop {} while freezing, re-injecting", tid, sig);
    if (::ptrace(PTRACE_CONT, tid, nullptr, sig) < 0) {
      return std::unexpected(GoneOr(errno, fmt::format("ptrace cont {}", tid)));
    }
    CRYO_TRYV(t.Interrupt());
  }
  return MakeError(ErrorKind::kInternal, "thread {} did not reach an interrupt stop", tid);
}

Tracee::Tracee(Tracee&& o) noexcept : tid_(std::exchange(o.tid_, -1)) {}
Tracee& Tracee::operator=(Tracee&& o) noexcept {
  if (this != &o) {
    if (tid_ > 0) (void)Detach();
    tid_ = std::exchange(o.tid_, -1);
  }
  return *this;
}
Tracee::~Tracee() {
  if (tid_ > 0) (void)Detach();
}

Result<model::GpRegs> Tracee::GetRegs() const {
  model::GpRegs regs{};
  iovec iov{&regs, sizeof regs};
  if (::ptrace(PTRACE_GETREGSET, tid_, NT_PRSTATUS, &iov) < 0) {
    return std::unexpected(GoneOr(errno, fmt::format("get registers of {}", tid_)));
  }
  return regs;
}

Status Tracee::SetRegs(const model::GpRegs& regs) const {
  iovec iov{const_cast<model::GpRegs*>(&regs), sizeof regs};
  if (::ptrace(PTRACE_SETREGSET, tid_, NT_PRSTATUS, &iov) < 0) {
    return std::unexpected(GoneOr(errno, fmt::format("set registers of {}", tid_)));
  }
  return {};
}

Result<std::string> Tracee::GetXstate() const {
  std::string buf(kMaxXstate, '\0');
  iovec iov{buf.data(), buf.size()};
  if (::ptrace(PTRACE_GETREGSET, tid_, NT_X86_XSTATE, &iov) < 0) {
    return std::unexpected(GoneOr(errno, fmt::format("get xstate of {}", tid_)));
  }
  buf.resize(iov.iov_len);
  return buf;
}

Status Tracee::SetXstate(const std::string& xstate) const {
  std::string copy = xstate;
  iovec iov{copy.data(), copy.size()};
  if (::ptrace(PTRACE_SETREGSET, tid_, NT_X86_XSTATE, &iov) < 0) {
    return std::unexpected(GoneOr(errno, fmt::format("set xstate of {}", tid_)));
  }
  return {};
}

Result<uint64_t> Tracee::GetSigmask() const {
  uint64_t mask = 0;
  if (::ptrace(PTRACE_GETSIGMASK, tid_, sizeof mask, &mask) < 0) {
    return std::unexpected(GoneOr(errno, fmt::format("get signal mask of {}", tid_)));
  }
  return mask;
}

Status Tracee::SetSigmask(uint64_t mask) const {
  if (::ptrace(PTRACE_SETSIGMASK, tid_, sizeof mask, &mask) < 0) {
    return std::unexpected(GoneOr(errno, fmt::format("set signal mask of {}", tid_)));
  }
  return {};
}

Result<std::vector<model::SigInfo>> Tracee::PeekPending(bool shared) const {
  std::vector<model::SigInfo> out;
  constexpr int kBatch = 32;
  model::SigInfo::raw_type batch[kBatch];
  for (;;) {
    __ptrace_peeksiginfo_args args{};
    args.off = out.size();
    args.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0;
    args.nr = kBatch;
    long n = ::ptrace(PTRACE_PEEKSIGINFO, tid_, &args, batch);
    if (n < 0)
      return std::unexpected(GoneOr(errno, fmt::format("peek pending signals of {}", tid_)));
    for (long i = 0; i < n; i++) {
      model::SigInfo si;
      std::memcpy(si.raw.data(), batch[i], si.raw.size());
      out.push_back(si);
    }
    if (n < kBatch) break;
  }
  return out;
}

Result<int> Tracee::ResumeAndWait(int request, int sig) const {
  if (::ptrace(static_cast<__ptrace_request>(request), tid_, nullptr, sig) < 0) {
    return std::unexpected(GoneOr(errno, fmt::format("ptrace resume {}", tid_)));
  }
  return WaitStop(tid_);
}

Status Tracee::Interrupt() const {
  if (::ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) < 0) {
    return std::unexpected(GoneOr(errno, fmt::format("ptrace interrupt {}", tid_)));
  }
  return {};
}

Status Tracee::Detach(int sig) {
  pid_t tid = std::exchange(tid_, -1);
  if (tid <= 0) return {};
  if (::ptrace(PTRACE_DETACH, tid, nullptr, sig) < 0 && errno != ESRCH) {
    return ErrnoError("ptrace detach {}", tid);
  }
  return {};
}

Status Tracee::KillAndWait() {
  pid_t tid = std::exchange(tid_, -1);
  if (tid <= 0) return {};
  if (::kill(tid, SIGKILL) < 0 && errno != ESRCH) return ErrnoError("kill {}", tid);
  // A traced thread reports its death to the tracer; wait for that report so that the caller
  // knows the process is dead (it may still be an unreaped zombie of its real parent).
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(tid, &status, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return {};  // ECHILD: already reported
    if (WIFEXITED(status) || WIFSIGNALED(status)) return {};
  }
}

}  // namespace cryo::ptrace
