#include "base/log.h"
#include "cli/verbs.h"

namespace cryo::cli {

int RunRestore(const restore::RestoreOptions& opts) {
  auto r = restore::Restore(opts);
  if (!r) {
    fmt::print(stderr, "cryo restore: {}\n", r.error().Message());
    return 1;
  }
  return opts.detach ? 0 : r->exit_status;
}

}  // namespace cryo::cli
