#include "dump/capture_seccomp.h"

#include <sys/ptrace.h>

#include <cerrno>

#include "base/io.h"
#include "proc/status.h"

namespace cryo::dump {
namespace {

constexpr size_t kSockFilterSize = 8;  // struct sock_filter
constexpr int kSeccompStrict = 1, kSeccompFilter = 2;

Result<int> SeccompMode(pid_t pid, pid_t tid) {
  std::string text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/task/{}/status", pid, tid)));
  auto st = CRYO_TRY(proc::ParseStatus(text));
  return st.seccomp;
}

Result<model::ThreadSeccomp> ReadFilters(pid_t tid) {
  model::ThreadSeccomp out{.tid = tid, .filters = {}};
  for (unsigned long index = 0;; index++) {
    long n = ::ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, nullptr);
    if (n < 0 && errno == ENOENT) break;
    if (n <= 0) return ErrnoError("PTRACE_SECCOMP_GET_FILTER tid {} index {}", tid, index);
    std::string insns(static_cast<size_t>(n) * kSockFilterSize, '\0');
    long m = ::ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, insns.data());
    if (m != n) return ErrnoError("PTRACE_SECCOMP_GET_FILTER tid {} index {} (data)", tid, index);
    struct __ptrace_seccomp_metadata md {
      .filter_off = index, .flags = 0
    };
    if (::ptrace(PTRACE_SECCOMP_GET_METADATA, tid, sizeof md, &md) < 0) {
      return ErrnoError("PTRACE_SECCOMP_GET_METADATA tid {} index {}", tid, index);
    }
    out.filters.push_back({.flags = static_cast<uint32_t>(md.flags), .insns = std::move(insns)});
  }
  return out;
}

}  // namespace

Result<bool> SuspendSeccomp(const ptrace::Freezer& frozen) {
  bool any = false;
  for (const ptrace::Tracee& t : frozen.threads()) {
    int mode = CRYO_TRY(SeccompMode(frozen.pid(), t.tid()));
    if (mode == kSeccompStrict) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {} thread {} is in seccomp strict mode, which cannot be restored",
                       frozen.pid(), t.tid());
    }
    any |= mode == kSeccompFilter;
  }
  if (!any) return false;
  for (const ptrace::Tracee& t : frozen.threads()) {
    if (::ptrace(PTRACE_SETOPTIONS, t.tid(), nullptr,
                 PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP) < 0) {
      return ErrnoError("pid {}: suspend seccomp of thread {} (PTRACE_O_SUSPEND_SECCOMP)",
                        frozen.pid(), t.tid());
    }
  }
  return true;
}

Status CaptureSeccomp(const ptrace::Freezer& frozen, model::Process& p) {
  if (!CRYO_TRY(SuspendSeccomp(frozen))) return {};
  for (const ptrace::Tracee& t : frozen.threads()) {
    p.control.seccomp.push_back(CRYO_TRY_CTX(ReadFilters(t.tid()), "pid {}", frozen.pid()));
  }
  return {};
}

}  // namespace cryo::dump
