// The verbs of the cryo command line. Each takes its options struct and returns the process exit
// code; errors are printed once, as "cryo <verb>: <error chain>".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dump/dump.h"
#include "dump/pre_dump.h"
#include "restore/lazy_daemon.h"
#include "restore/restore.h"

namespace cryo::cli {

int RunDump(const dump::DumpOptions& opts, const std::string& page_server = "");
int RunPreDump(const dump::PreDumpOptions& opts, const std::string& page_server = "");
int RunMerge(const std::string& dir, const std::optional<image::CompressOptions>& compress);
int RunRestore(const restore::RestoreOptions& opts);
int RunLazyPages(const restore::LazyPagesOptions& opts);

struct MigrateOptions {
  pid_t pid = 0;
  std::string to;        // ADDRESS:PORT of `cryo migrate-receive`
  std::string work_dir;  // pre-dump rounds here (default: a fresh directory in /dev/shm)
  int max_rounds = 8;
};
struct MigrateResult {
  std::vector<uint64_t> rounds;  // pages each pre-dump round stored
  uint64_t final_pages_stored = 0;
  uint64_t final_pages_lazy = 0;
  double frozen_before_restore = 0;  // the process frozen until the destination had the image
  double total_seconds = 0;
};
int RunMigrate(const MigrateOptions& opts);

struct MigrateReceiveOptions {
  std::string listen;      // ADDRESS:PORT
  std::string images_dir;  // created 0700; the image arrives in it
};
struct MigrateReceiveResult {
  double downtime_seconds = 0;  // frozen at the source + receive + restore until running
  double total_seconds = 0;
};
int RunMigrateReceive(const MigrateReceiveOptions& opts);

struct PageServerOptions {
  std::string listen;      // ADDRESS:PORT
  std::string images_dir;  // created 0700; each pushed image goes into a subdirectory
};
int RunPageServer(const PageServerOptions& opts);
// dump / pre-dump --page-server: sends image directory `dir` (as its last path component) to a
// `cryo page-server` and removes the local pages files once it acknowledged. `final`: a dump,
// after which the server exits.
Status PushImage(const std::string& server, const std::string& dir, bool final);

}  // namespace cryo::cli
