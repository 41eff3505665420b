// Error values: a kind, the errno if any, and a chain of context ("dump pid 42: read pagemap:
// EIO"). Everything the world can do to us returns Result<T>; the CLI prints the chain once.
#pragma once

#include <fmt/format.h>

#include <expected>
#include <string>
#include <utility>

namespace cryo {

enum class ErrorKind {
  kSys,           // a syscall failed; errno() says why
  kTraceeGone,    // the target (or one of its threads) vanished under us
  kCorruptImage,  // an image file is malformed, truncated or hostile
  kUnsupported,   // the target uses something we cannot checkpoint faithfully yet
  kInvalidArg,    // the user asked for something impossible
  kProtocol,      // a peer spoke the page-server protocol wrongly
  kInternal,      // a step failed in a way that is not the user's fault
};

const char* ErrorKindName(ErrorKind kind);

class Error {
 public:
  Error(ErrorKind kind, std::string what, int err = 0)
      : kind_(kind), errno_(err), message_(std::move(what)) {}

  ErrorKind kind() const { return kind_; }
  int sys_errno() const { return errno_; }
  // The whole chain, outermost context first, errno text last.
  std::string Message() const;

  // Prepends a context frame: Error(..., "read maps").Wrap("dump pid 42").
  Error Wrap(std::string_view context) &&;

 private:
  ErrorKind kind_;
  int errno_;
  std::string message_;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

// Constructors that read as what happened.
inline std::unexpected<Error> SysError(int err, std::string what) {
  return std::unexpected(Error(ErrorKind::kSys, std::move(what), err));
}
template <typename... Args>
std::unexpected<Error> MakeError(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  return std::unexpected(Error(kind, fmt::format(f, std::forward<Args>(args)...)));
}
// Captures errno at once: call directly after the failing syscall.
template <typename... Args>
std::unexpected<Error> ErrnoError(fmt::format_string<Args...> f, Args&&... args) {
  int err = errno;
  return std::unexpected(Error(ErrorKind::kSys, fmt::format(f, std::forward<Args>(args)...), err));
}
inline std::unexpected<Error> Wrapped(Error e, std::string_view context) {
  return std::unexpected(std::move(e).Wrap(context));
}

}  // namespace cryo

// Evaluates a Result expression; on error returns it from the enclosing function, otherwise
// yields the value. CRYO_TRYV is the same for Status. The _CTX forms add a context frame.
#define CRYO_TRY(expr)                                                        \
  ({                                                                          \
    auto cryo_try_r_ = (expr);                                                \
    if (!cryo_try_r_) return std::unexpected(std::move(cryo_try_r_).error()); \
    std::move(*cryo_try_r_);                                                  \
  })
#define CRYO_TRYV(expr)                                                       \
  do {                                                                        \
    auto cryo_try_r_ = (expr);                                                \
    if (!cryo_try_r_) return std::unexpected(std::move(cryo_try_r_).error()); \
  } while (0)
#define CRYO_TRY_CTX(expr, ...)                                                         \
  ({                                                                                    \
    auto cryo_try_r_ = (expr);                                                          \
    if (!cryo_try_r_)                                                                   \
      return ::cryo::Wrapped(std::move(cryo_try_r_).error(), fmt::format(__VA_ARGS__)); \
    std::move(*cryo_try_r_);                                                            \
  })
#define CRYO_TRYV_CTX(expr, ...)                                                        \
  do {                                                                                  \
    auto cryo_try_r_ = (expr);                                                          \
    if (!cryo_try_r_)                                                                   \
      return ::cryo::Wrapped(std::move(cryo_try_r_).error(), fmt::format(__VA_ARGS__)); \
  } while (0)
