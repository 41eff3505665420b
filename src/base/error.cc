#include "base/error.h"

#include <cstring>

namespace cryo {

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kSys:
      return "sys";
    case ErrorKind::kTraceeGone:
      return "tracee-gone";
    case ErrorKind::kCorruptImage:
      return "corrupt-image";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kInvalidArg:
      return "invalid-arg";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "?";
}

std::string Error::Message() const {
  if (errno_ == 0) return message_;
  return fmt::format("{}: {} ({})", message_, strerrorname_np(errno_), strerror(errno_));
}

Error Error::Wrap(std::string_view context) && {
  message_ = fmt::format("{}: {}", context, message_);
  return std::move(*this);
}

}  // namespace cryo
