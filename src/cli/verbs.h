// The verbs of the cryo command line. Each takes its options struct and returns the process exit
// code; errors are printed once, as "cryo <verb>: <error chain>".
#pragma once

#include <optional>
#include <string>

#include "dump/dump.h"
#include "dump/pre_dump.h"
#include "restore/lazy_daemon.h"
#include "restore/restore.h"

namespace cryo::cli {

int RunDump(const dump::DumpOptions& opts);
int RunPreDump(const dump::PreDumpOptions& opts);
int RunMerge(const std::string& dir, const std::optional<image::CompressOptions>& compress);
int RunRestore(const restore::RestoreOptions& opts);
int RunLazyPages(const restore::LazyPagesOptions& opts);

}  // namespace cryo::cli
