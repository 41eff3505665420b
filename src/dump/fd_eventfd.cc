#include "dump/fd_kinds.h"
#include "proc/text.h"

namespace cryo::dump {

Status CaptureEventfd(const proc::FdInfo& info, model::Fd& out) {
  const std::string* count = info.Find("eventfd-count");
  auto value = count ? proc::ParseUint(*count, 16) : std::nullopt;
  if (!value) return MakeError(ErrorKind::kInternal, "fd {}: no eventfd-count in fdinfo", out.fd);
  out.counter = *value;
  const std::string* sem = info.Find("eventfd-semaphore");
  if (sem && *sem == "1") out.kind_flags |= model::kEventfdSemaphore;
  return {};
}

}  // namespace cryo::dump
