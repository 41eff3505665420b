#include "ptrace/remote_syscalls.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "base/io.h"
#include "base/log.h"
#include "proc/maps.h"

namespace cryo::ptrace {

namespace {
constexpr uint64_t kAllBlocked = ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));

Result<std::vector<uint8_t>> ReadRemote(pid_t pid, uint64_t addr, uint64_t len) {
  std::vector<uint8_t> buf(len);
  iovec local{buf.data(), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n < 0) return ErrnoError("read {:#x}+{:#x} of pid {}", addr, len, pid);
  buf.resize(static_cast<size_t>(n));
  return buf;
}
}  // namespace

Result<RemoteAddr> FindSyscallGadget(pid_t pid) {
  std::string text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/maps", pid)));
  auto maps = CRYO_TRY_CTX(proc::ParseMaps(text), "pid {}", pid);
  // The vdso first (small, always there), then any readable executable mapping.
  std::vector<const proc::MapsEntry*> order;
  for (const auto& m : maps) {
    if (m.path == "[vdso]")
      order.insert(order.begin(), &m);
    else if (m.exec && m.read && m.end < 0x800000000000ull)
      order.push_back(&m);
  }
  for (const auto* m : order) {
    auto bytes = ReadRemote(pid, m->start, std::min<uint64_t>(m->end - m->start, 1 << 20));
    if (!bytes) continue;
    for (size_t i = 0; i + 1 < bytes->size(); i++) {
      if ((*bytes)[i] == 0x0f && (*bytes)[i + 1] == 0x05) return RemoteAddr(m->start + i);
    }
  }
  return MakeError(ErrorKind::kUnsupported, "pid {}: no syscall instruction found", pid);
}

Result<RemoteSyscalls> RemoteSyscalls::Start(const Tracee& tracee, RemoteAddr gadget) {
  model::GpRegs regs = CRYO_TRY(tracee.GetRegs());
  uint64_t mask = CRYO_TRY(tracee.GetSigmask());
  CRYO_TRYV(tracee.SetSigmask(kAllBlocked));
  return RemoteSyscalls(&tracee, gadget, regs, mask);
}

RemoteSyscalls::RemoteSyscalls(RemoteSyscalls&& o) noexcept
    : tracee_(o.tracee_),
      gadget_(o.gadget_),
      saved_regs_(o.saved_regs_),
      saved_mask_(o.saved_mask_),
      dirty_(o.dirty_),
      active_(std::exchange(o.active_, false)) {}

RemoteSyscalls::~RemoteSyscalls() {
  if (!active_) return;
  if (auto s = Finish(); !s)
    log::Warn("restoring thread after remote syscalls: {}", s.error().Message());
}

Result<int64_t> RemoteSyscalls::Call(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                                     uint64_t a4, uint64_t a5) {
  if (!active_) return MakeError(ErrorKind::kInternal, "remote syscall after Finish");
  model::GpRegs regs = saved_regs_;
  regs.rip = gadget_.value();
  regs.rax = static_cast<uint64_t>(nr);
  regs.orig_rax = ~0ull;  // not in a syscall: no restart fix-ups on the way out
  regs.rdi = a0;
  regs.rsi = a1;
  regs.rdx = a2;
  regs.r10 = a3;
  regs.r8 = a4;
  regs.r9 = a5;
  dirty_ = true;
  CRYO_TRYV(tracee_->SetRegs(regs));
  pid_t tid = tracee_->tid();
  // Entry stop, then exit stop. Signals are blocked, so no signal stop can come in between
  // except a fatal one (then the tracee is gone). A PTRACE_EVENT_STOP can: an interrupt or
  // job-control notification still pending from the freeze (seen in CI, with a tree forking and
  // exiting while it was frozen). It does nothing to the syscall: resume and go on waiting.
  int others = 0;
  for (int phase = 0; phase < 2;) {
    int status = CRYO_TRY_CTX(tracee_->ResumeAndWait(PTRACE_SYSCALL), "remote syscall {}", nr);
    if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80)) {
      phase++;
      continue;
    }
    bool event_stop = WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP;
    if (!event_stop || ++others > 16) {
      return MakeError(ErrorKind::kInternal, "remote syscall {} in {}: unexpected stop {:#x}", nr,
                       tid, status);
    }
    log::Debug("remote syscall {} in {}: event stop {:#x} on the way, resumed", nr, tid, status);
  }
  model::GpRegs after = CRYO_TRY(tracee_->GetRegs());
  return static_cast<int64_t>(after.rax);
}

Status RemoteSyscalls::RunUntilTrap(RemoteAddr entry, RemoteAddr end) {
  if (!active_) return MakeError(ErrorKind::kInternal, "remote code after Finish");
  model::GpRegs regs = saved_regs_;
  regs.rip = entry.value();
  regs.orig_rax = ~0ull;  // not in a syscall: no restart fix-ups on the way out
  dirty_ = true;
  CRYO_TRYV(tracee_->SetRegs(regs));
  // SIGTRAP open for the int3 only: a forced signal that is blocked gets its action reset.
  CRYO_TRYV(tracee_->SetSigmask(kAllBlocked & ~(1ull << (SIGTRAP - 1))));
  pid_t tid = tracee_->tid();
  int others = 0;
  for (;;) {
    int status = CRYO_TRY_CTX(tracee_->ResumeAndWait(PTRACE_CONT), "remote code in {}", tid);
    if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0) break;
    // As in Call: an event stop left pending from the freeze does nothing to the code.
    bool event_stop = WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP;
    if (!event_stop || ++others > 16) {
      return MakeError(ErrorKind::kInternal, "remote code in {}: unexpected stop {:#x}", tid,
                       status);
    }
  }
  // The trap must be ours: a SIGTRAP from the kernel (int3 gives SI_KERNEL) at the end.
  siginfo_t si{};
  if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &si) < 0) {
    return ErrnoError("PTRACE_GETSIGINFO of {}", tid);
  }
  model::GpRegs after = CRYO_TRY(tracee_->GetRegs());
  if (si.si_code != SI_KERNEL || after.rip != end.value()) {
    return MakeError(ErrorKind::kInternal,
                     "remote code in {}: SIGTRAP (code {}) at {:#x}, expected the trap at {:#x}",
                     tid, si.si_code, after.rip, end.value());
  }
  // At this signal-delivery stop the SIGTRAP is dropped when the thread resumes (Finish resumes
  // with no signal).
  return tracee_->SetSigmask(kAllBlocked);
}

Status RemoteSyscalls::Finish() {
  if (!active_) return {};
  active_ = false;
  if (dirty_) {
    // We are at a syscall-exit stop. Put the registers back, then bring the thread into a
    // fresh interrupt stop: resuming from there runs the signal path, where the kernel applies
    // syscall restart (-ERESTART*) to the saved registers as it would have without us.
    CRYO_TRYV(tracee_->SetRegs(saved_regs_));
    CRYO_TRYV(tracee_->Interrupt());
    int status = CRYO_TRY(tracee_->ResumeAndWait(PTRACE_CONT));
    if (!WIFSTOPPED(status) || (status >> 16) != PTRACE_EVENT_STOP) {
      return MakeError(ErrorKind::kInternal, "thread {}: expected interrupt stop, got {:#x}",
                       tracee_->tid(), status);
    }
  }
  return tracee_->SetSigmask(saved_mask_);
}

Result<RemoteScratch> RemoteScratch::Map(RemoteSyscalls& rs, pid_t pid, uint64_t size, bool exec) {
  constexpr int kRw = PROT_READ | PROT_WRITE;
  int64_t r = -EACCES;
  if (exec) {
    r = CRYO_TRY(
        rs.Call(SYS_mmap, 0, size, kRw | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0));
  }
  bool got_exec = !(r < 0 && r > -4096);
  if (!got_exec) {
    if (exec) log::Debug("pid {}: no executable scratch ({}): remote syscalls one by one", pid, -r);
    r = CRYO_TRY(rs.Call(SYS_mmap, 0, size, kRw, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0));
  }
  if (r < 0 && r > -4096) return SysError(static_cast<int>(-r), "remote mmap of scratch memory");
  return RemoteScratch(&rs, pid, RemoteAddr(static_cast<uint64_t>(r)), size, got_exec);
}

RemoteScratch::RemoteScratch(RemoteScratch&& o) noexcept
    : rs_(std::exchange(o.rs_, nullptr)),
      pid_(o.pid_),
      addr_(o.addr_),
      size_(o.size_),
      exec_(o.exec_) {}

RemoteScratch::~RemoteScratch() {
  if (rs_ == nullptr) return;
  if (auto s = Unmap(); !s) log::Warn("unmapping remote scratch: {}", s.error().Message());
}

Status RemoteScratch::Unmap() {
  RemoteSyscalls* rs = std::exchange(rs_, nullptr);
  if (rs == nullptr) return {};
  int64_t r = CRYO_TRY(rs->Call(SYS_munmap, addr_.value(), size_));
  if (r < 0) return SysError(static_cast<int>(-r), "remote munmap of scratch memory");
  return {};
}

Status RemoteScratch::Write(uint64_t offset, std::span<const std::byte> data) const {
  iovec local{const_cast<std::byte*>(data.data()), data.size()};
  iovec remote{reinterpret_cast<void*>(addr_.value() + offset), data.size()};
  ssize_t n = ::process_vm_writev(pid_, &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(data.size())) return ErrnoError("write scratch of pid {}", pid_);
  return {};
}

Status RemoteScratch::Read(uint64_t offset, std::span<std::byte> out) const {
  iovec local{out.data(), out.size()};
  iovec remote{reinterpret_cast<void*>(addr_.value() + offset), out.size()};
  ssize_t n = ::process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(out.size())) return ErrnoError("read scratch of pid {}", pid_);
  return {};
}

}  // namespace cryo::ptrace
