#include "base/log.h"
#include "cli/verbs.h"
#include "image/merge.h"

namespace cryo::cli {

int RunRestore(const restore::RestoreOptions& opts) {
  auto r = restore::Restore(opts);
  if (!r) {
    fmt::print(stderr, "cryo restore: {}\n", r.error().Message());
    return 1;
  }
  return opts.detach ? 0 : r->exit_status;
}

int RunLazyPages(const restore::LazyPagesOptions& opts) {
  auto r = restore::RunLazyPages(opts);
  if (!r) {
    fmt::print(stderr, "cryo lazy-pages: {}\n", r.error().Message());
    return 1;
  }
  return 0;
}

int RunMerge(const std::string& dir, const std::optional<image::CompressOptions>& compress) {
  auto stats = image::MergeChain(dir, compress);
  if (!stats) {
    fmt::print(stderr, "cryo merge: {}\n", stats.error().Message());
    return 1;
  }
  log::Info("merged {}: {} of {} pages copied from {} parent image(s)", dir,
            stats->pages_from_parents, stats->pages_total, stats->chain_depth);
  if (stats->bytes_after > 0) {
    log::Info("pages file: {} bytes before, {} after", stats->bytes_before, stats->bytes_after);
  }
  return 0;
}

}  // namespace cryo::cli
