// cryo's command line: parses the verb and its options, configures logging, runs the verb.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "base/log.h"
#include "cli/check.h"
#include "cli/show.h"
#include "cli/verbs.h"
#include "image/pages_file.h"

namespace {

struct CommonOptions {
  int verbosity = 0;
  std::string log_file;
};

void AddCommon(CLI::App* app, CommonOptions& common) {
  app->add_flag("-v,--verbose", common.verbosity, "more output (repeat for debug)");
  app->add_option("--log-file", common.log_file, "also write a full log to this file");
}

// --compress[=CODEC] and --compress-level, shared by dump, pre-dump and merge.
struct CompressCli {
  CLI::Option* option = nullptr;
  CLI::Option* level_option = nullptr;
  std::string codec;
  int level = 1;
};

void AddCompress(CLI::App* app, CompressCli& c) {
  c.option = app->add_option("--compress", c.codec,
                             "store pages compressed in independent blocks: lz4 (default), zstd or "
                             "none")
                 ->expected(0, 1);
  c.level_option = app->add_option("--compress-level", c.level,
                                   "codec level (default 1; lower: faster, larger)");
}

// The options --compress gave, or nullopt when it was not given (or an error was printed: rc).
std::optional<cryo::image::CompressOptions> ResolveCompress(const CompressCli& c, int& rc) {
  if (c.option == nullptr || c.option->count() == 0) {
    if (c.level_option != nullptr && c.level_option->count() > 0) {
      fmt::print(stderr, "cryo: --compress-level needs --compress\n");
      rc = 2;
    }
    return std::nullopt;
  }
  auto codec = cryo::image::ParseCodec(c.codec);
  if (!codec) {
    fmt::print(stderr, "cryo: {}\n", codec.error().Message());
    rc = 2;
    return std::nullopt;
  }
  return cryo::image::CompressOptions{*codec, c.level};
}

int ConfigureLogging(const CommonOptions& common) {
  int fd = -1;
  if (!common.log_file.empty()) {
    fd = ::open(common.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      fmt::print(stderr, "cryo: cannot open log file {}: {}\n", common.log_file, strerror(errno));
      return 1;
    }
  }
  auto level = common.verbosity >= 2   ? cryo::log::Level::kDebug
               : common.verbosity == 1 ? cryo::log::Level::kInfo
                                       : cryo::log::Level::kWarn;
  cryo::log::Configure(level, fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // cryo lives briefly and decodes and copies in bursts: keep freed heap memory rather than give
  // it back to the kernel and fault it in again, and take large buffers from that heap too. On
  // this VM every page first touched costs the host's work (KERNEL.md), a lazy restore over a
  // nine-image pre-dump chain faulted 1300 pages, most of them freed and touched again.
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  CLI::App app{"cryo: checkpoint and restore of Linux processes"};
  app.require_subcommand(1);
  CommonOptions common;

  auto* check = app.add_subcommand("check", "probe the kernel features cryo uses");
  bool check_json = false;
  check->add_flag("--json", check_json, "print JSON");
  AddCommon(check, common);

  auto* dump = app.add_subcommand("dump", "checkpoint a running process into an image directory");
  cryo::dump::DumpOptions dump_opts;
  dump->add_option("-t,--tree", dump_opts.pid, "pid of the process to dump")->required();
  dump->add_option("-D,--images-dir", dump_opts.images_dir, "image directory")->required();
  dump->add_flag("-R,--leave-running", dump_opts.leave_running, "let the process run on");
  dump->add_flag("-j,--shell-job", dump_opts.shell_job,
                 "the process runs on the caller's terminal (a shell job)");
  dump->add_option("--prev-images-dir", dump_opts.prev_images_dir,
                   "pre-dump image (relative to -D): store only pages written since");
  dump->add_flag("--track-mem", dump_opts.track_mem,
                 "with --leave-running: keep tracking writes for a later incremental round");
  dump->add_flag("--tcp-established", dump_opts.tcp_established,
                 "dump established TCP connections (repair mode under a network lock)");
  dump->add_flag("--lazy-pages", dump_opts.lazy_pages,
                 "post-copy: leave memory in the frozen process and serve it on --port");
  dump->add_option("--address", dump_opts.address,
                   "with --lazy-pages: address to serve on (default 127.0.0.1)");
  dump->add_option("--port", dump_opts.port, "with --lazy-pages: TCP port to serve on");
  std::string dump_server;
  dump->add_option("--page-server", dump_server,
                   "ADDRESS:PORT of a `cryo page-server`: send the image there (pages files "
                   "are removed here once it has them)");
  CompressCli dump_compress;
  AddCompress(dump, dump_compress);
  AddCommon(dump, common);

  auto* pre_dump =
      app.add_subcommand("pre-dump", "copy a running process's memory and track what it writes");
  cryo::dump::PreDumpOptions pre_opts;
  pre_dump->add_option("-t,--tree", pre_opts.pid, "pid of the process")->required();
  pre_dump->add_option("-D,--images-dir", pre_opts.images_dir, "image directory")->required();
  pre_dump->add_option("--prev-images-dir", pre_opts.prev_images_dir,
                       "previous pre-dump image (relative to -D)");
  std::string pre_server;
  pre_dump->add_option("--page-server", pre_server,
                       "ADDRESS:PORT of a `cryo page-server`: send the image there");
  CompressCli pre_compress;
  AddCompress(pre_dump, pre_compress);
  AddCommon(pre_dump, common);

  auto* restore = app.add_subcommand("restore", "restore a process from an image directory");
  cryo::restore::RestoreOptions restore_opts;
  restore->add_option("-D,--images-dir", restore_opts.images_dir, "image directory")->required();
  restore->add_flag("-d,--restore-detached", restore_opts.detach,
                    "return once the process runs instead of waiting for it");
  restore->add_flag("--tcp-established", restore_opts.tcp_established,
                    "restore established TCP connections and remove their network lock");
  restore->add_flag("-j,--shell-job", restore_opts.shell_job,
                    "give the process this terminal (it was dumped with --shell-job)");
  restore->add_flag("--lazy-parent-pages", restore_opts.lazy_parent_pages,
                    "with --lazy-pages: parent images' pages too are delivered after the process "
                    "runs (the daemon needs the same flag)");
  restore->add_flag("--lazy-pages", restore_opts.lazy_pages,
                    "let the processes run before their memory is in: `cryo lazy-pages -D DIR` "
                    "delivers it");
  AddCommon(restore, common);

  auto* lazy = app.add_subcommand("lazy-pages",
                                  "deliver the memory of processes restored with --lazy-pages");
  cryo::restore::LazyPagesOptions lazy_opts;
  lazy->add_option("-D,--images-dir", lazy_opts.images_dir, "image directory")->required();
  lazy->add_option("--wait", lazy_opts.wait_seconds,
                   "seconds to wait for every process to be handed over (default 60)");
  lazy->add_option("--page-server", lazy_opts.page_server,
                   "ADDRESS:PORT of `cryo dump --lazy-pages` holding the pages the image lacks");
  lazy->add_option("--page-server-fd", lazy_opts.page_server_fd,
                   "internal (migrate-receive): an inherited, connected page-server socket");
  lazy->add_flag("--lazy-parent-pages", lazy_opts.parent_pages,
                 "deliver the parent images' pages too (restore --lazy-parent-pages)");
  lazy->add_option("--fill-delay", lazy_opts.fill_delay_seconds,
                   "seconds to answer only faults before filling the rest (default 0)");
  AddCommon(lazy, common);

  auto* migrate = app.add_subcommand(
      "migrate", "move a running process to another host: pre-copy rounds, then post-copy");
  cryo::cli::MigrateOptions migrate_opts;
  migrate->add_option("-t,--tree", migrate_opts.pid, "pid of the process to move")->required();
  migrate->add_option("--to", migrate_opts.to, "ADDRESS:PORT of `cryo migrate-receive`")
      ->required();
  migrate->add_option("--work-dir", migrate_opts.work_dir,
                      "where the pre-dump rounds are kept (default: a new dir in /dev/shm)");
  migrate->add_option("--max-rounds", migrate_opts.max_rounds,
                      "pre-dump rounds at most (default 8)");
  AddCommon(migrate, common);

  auto* receive = app.add_subcommand("migrate-receive",
                                     "receive a process sent with `cryo migrate` and run it here");
  cryo::cli::MigrateReceiveOptions receive_opts;
  receive->add_option("--listen", receive_opts.listen, "ADDRESS:PORT to listen on")->required();
  receive->add_option("-D,--images-dir", receive_opts.images_dir, "where the image goes")
      ->required();
  AddCommon(receive, common);

  auto* page_server = app.add_subcommand(
      "page-server", "receive images sent with dump / pre-dump --page-server from another host");
  cryo::cli::PageServerOptions ps_opts;
  page_server->add_option("--listen", ps_opts.listen, "ADDRESS:PORT to listen on")->required();
  page_server->add_option("-D,--images-dir", ps_opts.images_dir, "where the images go")->required();
  AddCommon(page_server, common);

  auto* show = app.add_subcommand("show", "print an image directory or file as JSON");
  std::string show_path;
  show->add_option("path", show_path, "image directory, or a file in one")->required();
  AddCommon(show, common);

  auto* merge = app.add_subcommand(
      "merge", "copy the pages an incremental dump takes from its parents into it");
  std::string merge_dir;
  merge->add_option("dir", merge_dir, "image directory of a dump made with --prev-images-dir")
      ->required();
  CompressCli merge_compress;
  AddCompress(merge, merge_compress);
  AddCommon(merge, common);

  CLI11_PARSE(app, argc, argv);
  if (int rc = ConfigureLogging(common); rc != 0) return rc;

  int rc = 0;
  auto dump_c = ResolveCompress(dump_compress, rc);
  auto pre_c = ResolveCompress(pre_compress, rc);
  auto merge_c = ResolveCompress(merge_compress, rc);
  if (rc != 0) return rc;
  if (dump_c) dump_opts.compress = *dump_c;
  if (pre_c) pre_opts.compress = *pre_c;

  if (*check) return cryo::cli::RunCheck(check_json);
  if (*dump) return cryo::cli::RunDump(dump_opts, dump_server);
  if (*pre_dump) return cryo::cli::RunPreDump(pre_opts, pre_server);
  if (*page_server) return cryo::cli::RunPageServer(ps_opts);
  if (*restore) return cryo::cli::RunRestore(restore_opts);
  if (*lazy) return cryo::cli::RunLazyPages(lazy_opts);
  if (*migrate) return cryo::cli::RunMigrate(migrate_opts);
  if (*receive) return cryo::cli::RunMigrateReceive(receive_opts);
  if (*show) return cryo::cli::RunShow(show_path);
  if (*merge) return cryo::cli::RunMerge(merge_dir, merge_c);
  return 2;
}
