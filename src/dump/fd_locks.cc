#include "dump/fd_kinds.h"
#include "proc/text.h"

namespace cryo::dump {
namespace {

// "<id>: <KIND> <ADVISORY|MANDATORY> <READ|WRITE> <pid> <maj:min:ino> <start> <end|EOF>", the
// value of one "lock" line (locks/proc.c: lock_get_status). Blocked waiters ("<id>: -> ...")
// are not held and are skipped by the caller.
Result<model::FileLock> ParseLock(std::string_view line, int fd) {
  auto refuse = [&](std::string_view why) {
    return MakeError(ErrorKind::kUnsupported, "fd {}: lock '{}': {}", fd, line, why);
  };
  std::string_view rest = line;
  proc::NextToken(&rest);  // id
  std::string_view kind = proc::NextToken(&rest);
  std::string_view mode = proc::NextToken(&rest);
  std::string_view access = proc::NextToken(&rest);
  proc::NextToken(&rest);  // pid
  proc::NextToken(&rest);  // device and inode
  auto start = proc::ParseUint(proc::NextToken(&rest));
  std::string_view end_text = proc::NextToken(&rest);
  model::FileLock l;
  if (kind == "FLOCK") {
    l.kind = model::LockKind::kFlock;
  } else if (kind == "POSIX") {
    l.kind = model::LockKind::kPosix;
  } else if (kind == "OFDLCK") {
    l.kind = model::LockKind::kOfd;
  } else {
    return refuse("leases and delegations are not supported");
  }
  if (mode != "ADVISORY") return refuse("only advisory locks are supported");
  if (access != "READ" && access != "WRITE") return refuse("unknown access");
  l.write = access == "WRITE";
  auto end = end_text == "EOF" ? std::optional<uint64_t>(UINT64_MAX) : proc::ParseUint(end_text);
  if (!start || !end) return refuse("cannot read its range");
  l.start = *start;
  l.end = *end;
  return l;
}

}  // namespace

Status CaptureLocks(const proc::FdInfo& info, model::Fd& out) {
  for (const auto& [key, value] : info.extra) {
    if (key != "lock" || value.find("->") != std::string::npos) continue;
    out.locks.push_back(CRYO_TRY(ParseLock(value, out.fd)));
  }
  return {};
}

}  // namespace cryo::dump
