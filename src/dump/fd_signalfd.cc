#include "dump/fd_kinds.h"
#include "proc/text.h"

namespace cryo::dump {

Status CaptureSignalfd(const proc::FdInfo& info, model::Fd& out) {
  const std::string* mask = info.Find("sigmask");
  auto value = mask ? proc::ParseUint(*mask, 16) : std::nullopt;
  if (!value) return MakeError(ErrorKind::kInternal, "fd {}: no sigmask in fdinfo", out.fd);
  out.signal_mask = *value;
  return {};
}

}  // namespace cryo::dump
