#include <unistd.h>

#include "base/log.h"
#include "cli/verbs.h"

namespace cryo::cli {

int RunDump(const dump::DumpOptions& opts, const std::string& page_server) {
  auto stats = dump::Dump(opts);
  if (!stats) {
    fmt::print(stderr, "cryo dump: {}\n", stats.error().Message());
    return 1;
  }
  if (!page_server.empty()) {
    if (auto s = PushImage(page_server, opts.images_dir, true); !s) {
      fmt::print(stderr, "cryo dump: send the image to {}: {}\n", page_server, s.error().Message());
      return 1;
    }
  }
  log::Info("dumped pid {}: {} pages ({} MiB) in {:.3f} s, frozen {:.3f} s", opts.pid,
            stats->pages_written, stats->bytes_written >> 20, stats->total_seconds,
            stats->frozen_seconds);
  return 0;
}

int RunPreDump(const dump::PreDumpOptions& opts, const std::string& page_server) {
  auto stats = dump::PreDump(opts);
  if (!stats) {
    fmt::print(stderr, "cryo pre-dump: {}\n", stats.error().Message());
    return 1;
  }
  if (!page_server.empty()) {
    if (auto s = PushImage(page_server, opts.images_dir, false); !s) {
      fmt::print(stderr, "cryo pre-dump: send the image to {}: {}\n", page_server,
                 s.error().Message());
      return 1;
    }
  }
  log::Info("pre-dumped pid {}: {} pages stored, {} unchanged, frozen {:.3f} s", opts.pid,
            stats->pages_written, stats->pages_unchanged, stats->frozen_seconds);
  return 0;
}

}  // namespace cryo::cli
