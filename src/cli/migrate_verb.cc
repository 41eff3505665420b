// cryo migrate / migrate-receive (docs/page-server.md, "Migration"): pre-dump rounds while the
// process runs, each sent to the destination as it is taken, until the dirty set stops
// shrinking; then a post-copy dump whose image goes over the same connection, a lazy restore at
// the destination, and the remaining pages served from the frozen source on that connection.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/io.h"
#include "base/log.h"
#include "base/stopwatch.h"
#include "cli/verbs.h"
#include "mem/page_wire.h"
#include "proc/tasks.h"
#include "restore/lazy.h"

namespace cryo::cli {
namespace {

namespace fs = std::filesystem;

bool IsPagesFile(const std::string& name) { return name.rfind("pages-", 0) == 0; }

Result<MigrateResult> Migrate(const MigrateOptions& opts) {
  auto t0 = SteadyClock::now();
  UniqueFd conn = CRYO_TRY(mem::WireConnect(opts.to));
  CRYO_TRYV(mem::WireHello(conn.get(), true, opts.to));
  std::string work = opts.work_dir;
  if (work.empty()) {
    std::string tmpl = "/dev/shm/cryo-migrate-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoError("mkdtemp {}", tmpl);
    work = tmpl;
  }
  // A directory we made goes away whatever happens (its rounds are on the destination).
  struct RemoveAfter {
    std::string dir;
    ~RemoveAfter() {
      std::error_code ec;
      if (!dir.empty()) fs::remove_all(dir, ec);
    }
  } remove_after{opts.work_dir.empty() ? work : ""};
  MigrateResult res;
  uint64_t last = UINT64_MAX;
  std::string prev;
  for (int round = 1; round <= opts.max_rounds; round++) {
    std::string name = fmt::format("pre-{}", round);
    dump::PreDumpOptions pre;
    pre.pid = opts.pid;
    pre.images_dir = work + "/" + name;
    if (!prev.empty()) pre.prev_images_dir = "../" + prev;
    auto stats = CRYO_TRY_CTX(dump::PreDump(pre), "pre-dump round {}", round);
    CRYO_TRYV(mem::WireSendDir(conn.get(), pre.images_dir, name));
    // The source keeps only what the next round reads (pagemaps, tracking): not the pages.
    for (const auto& e : fs::directory_iterator(pre.images_dir)) {
      if (IsPagesFile(e.path().filename().string())) fs::remove(e.path());
    }
    log::Info("migrate: round {}: {} pages written since the last round", round,
              stats.pages_written);
    res.rounds.push_back(stats.pages_written);
    prev = name;
    // Stop once the dirty set no longer shrinks by a tenth: more rounds would not cut the
    // final dump's work.
    if (round >= 2 && stats.pages_written * 10 >= last * 9) break;
    last = stats.pages_written;
  }
  dump::DumpOptions d;
  d.pid = opts.pid;
  d.images_dir = work + "/final";
  d.prev_images_dir = "../" + prev;
  d.lazy_pages = true;
  d.lazy_conn = conn.get();
  d.on_image = [&](const dump::DumpStats& s) -> Status {
    auto t_send = SteadyClock::now();
    CRYO_TRYV(mem::WireSendDir(conn.get(), d.images_dir, "final"));
    auto r = mem::WireFrame::Of(mem::WireType::kRestore);
    res.frozen_before_restore = s.frozen_seconds + SecondsSince(t_send);
    r.addr = static_cast<uint64_t>(res.frozen_before_restore * 1e6);
    return mem::WireSend(conn.get(), r);
  };
  auto final_stats = CRYO_TRY_CTX(dump::Dump(d), "final dump");
  res.final_pages_stored = final_stats.pages_written;
  res.final_pages_lazy = final_stats.pages_lazy;
  res.total_seconds = SecondsSince(t0);
  return res;
}

// Receives files until kRestore or kDone, which it returns (kRestore: `addr` = the µs the
// process had been frozen at the source).
Result<mem::WireFrame> ReceiveImages(int fd, const std::string& dir, const std::string& peer) {
  UniqueFd out;
  std::string name;
  uint64_t size = 0, at = 0;
  for (;;) {
    auto f = CRYO_TRY(mem::WireRecv(fd, peer));
    switch (static_cast<mem::WireType>(f.type)) {
      case mem::WireType::kFileBegin: {
        if (out.valid()) return MakeError(ErrorKind::kCorruptImage, "{}: file in a file", peer);
        name.assign(f.len, '\0');
        CRYO_TRYV(mem::WireRecvPayload(fd, std::as_writable_bytes(std::span(name)), peer));
        if (!mem::WireSafeName(name)) {
          return MakeError(ErrorKind::kCorruptImage, "{} sent a file named '{}'", peer, name);
        }
        auto slash = name.find('/');
        if (slash != std::string::npos) {
          std::string sub = dir + "/" + name.substr(0, slash);
          if (::mkdir(sub.c_str(), 0700) < 0 && errno != EEXIST) return ErrnoError("mkdir {}", sub);
        }
        std::string path = dir + "/" + name;
        out.Reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!out.valid()) return ErrnoError("create {}", path);
        size = f.addr;
        at = 0;
        break;
      }
      case mem::WireType::kFileData: {
        if (!out.valid() || f.addr != at || f.len > size - at) {
          return MakeError(ErrorKind::kCorruptImage, "{}: data outside file {}", peer, name);
        }
        std::vector<std::byte> buf(f.len);
        CRYO_TRYV(mem::WireRecvPayload(fd, buf, peer));
        CRYO_TRYV(PwriteFull(out.get(), buf, at, name));
        at += f.len;
        break;
      }
      case mem::WireType::kFileEnd:
        if (!out.valid() || at != size) {
          return MakeError(ErrorKind::kCorruptImage, "{}: file {} cut short ({} of {} bytes)", peer,
                           name, at, size);
        }
        out.Reset();
        break;
      case mem::WireType::kRestore:
      case mem::WireType::kDone:
        if (out.valid()) return MakeError(ErrorKind::kCorruptImage, "{}: end mid-file", peer);
        return f;
      default:
        return MakeError(ErrorKind::kCorruptImage, "{}: unexpected message {} while receiving",
                         peer, f.type);
    }
  }
}

// Runs `body` in a forked child, which exits with its status. No exec: a fresh cryo spends
// milliseconds of the downtime loading itself. The child first closes `close`, fds of ours it
// must not hold (a daemon holding the listening port, a restore passing on the connection).
Result<pid_t> ForkRun(std::initializer_list<int> close, const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork");
  if (pid == 0) {
    for (int fd : close) ::close(fd);
    int rc = body();
    std::fflush(nullptr);
    ::_exit(rc);
  }
  return pid;
}

Result<int> Wait(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return ErrnoError("wait for pid {}", pid);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Result<UniqueFd> ListenOn(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return MakeError(ErrorKind::kInvalidArg, "'{}' is not ADDRESS:PORT", host_port);
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  int port = std::atoi(host_port.c_str() + colon + 1);
  if (port <= 0 || port > 65535) {
    return MakeError(ErrorKind::kInvalidArg, "'{}': bad port", host_port);
  }
  return mem::WireListen(host, static_cast<uint16_t>(port));
}

Result<MigrateReceiveResult> MigrateReceive(const MigrateReceiveOptions& opts) {
  UniqueFd listener = CRYO_TRY(ListenOn(opts.listen));
  if (::mkdir(opts.images_dir.c_str(), 0700) < 0 && errno != EEXIST) {
    return ErrnoError("mkdir {}", opts.images_dir);
  }
  log::Info("migrate-receive: listening on {}", opts.listen);
  UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.valid()) return ErrnoError("accept");
  auto t0 = SteadyClock::now();
  std::string peer = "the migration source";
  CRYO_TRYV(mem::WireHello(conn.get(), false, peer));
  auto end = CRYO_TRY(ReceiveImages(conn.get(), opts.images_dir, peer));
  if (!end.Is(mem::WireType::kRestore)) {
    return MakeError(ErrorKind::kCorruptImage, "{} ended without an image to restore", peer);
  }
  uint64_t frozen_us = end.addr;
  auto t_restore = SteadyClock::now();
  std::string final_dir = opts.images_dir + "/final";

  // The pre-dump rounds' pages are here already: delivered from the local images after the
  // process runs, so that the downtime does not grow with the memory. The daemon's socket is
  // bound here, so that the restore starts at once, beside the daemon loading the images.
  UniqueFd lazy_listener = CRYO_TRY(restore::ListenLazySocket(final_dir));
  restore::LazyPagesOptions lazy;
  lazy.images_dir = final_dir;
  lazy.page_server_fd = conn.get();
  lazy.parent_pages = true;
  lazy.listen_fd = lazy_listener.get();
  pid_t daemon = CRYO_TRY(ForkRun({listener.get()}, [&] { return cli::RunLazyPages(lazy); }));
  restore::RestoreOptions ro;
  ro.images_dir = final_dir;
  ro.lazy_pages = true;
  ro.lazy_parent_pages = true;
  ro.detach = true;
  auto restore = ForkRun({listener.get(), conn.get(), lazy_listener.get()},
                         [&] { return cli::RunRestore(ro); });
  conn.Reset();  // the daemon has them
  lazy_listener.Reset();
  if (!restore) {
    (void)::kill(daemon, SIGTERM);
    (void)Wait(daemon);
    return std::unexpected(std::move(restore).error());
  }
  int rrc = CRYO_TRY(Wait(*restore));
  MigrateReceiveResult res;
  res.downtime_seconds = static_cast<double>(frozen_us) / 1e6 + SecondsSince(t_restore);
  if (rrc != 0) {
    (void)::kill(daemon, SIGTERM);
    (void)Wait(daemon);
    return MakeError(ErrorKind::kInternal, "restore at the destination failed (status {})", rrc);
  }
  log::Info("migrate-receive: running again after {:.1f} ms of downtime",
            res.downtime_seconds * 1e3);
  int drc = CRYO_TRY(Wait(daemon));
  if (drc != 0) {
    return MakeError(ErrorKind::kInternal, "the lazy-pages daemon failed (status {})", drc);
  }
  res.total_seconds = SecondsSince(t0);
  nlohmann::json j = {{"downtime_seconds", res.downtime_seconds},
                      {"source_frozen_before_restore_seconds", frozen_us / 1e6},
                      {"total_seconds", res.total_seconds}};
  CRYO_TRYV(WriteWholeFile(opts.images_dir + "/stats-migrate.json", j.dump(2) + "\n"));
  return res;
}

// `cryo page-server`: images pushed by dump and pre-dump --page-server, one connection each,
// until a dump (not a pre-dump) has arrived.
Status PageServer(const PageServerOptions& opts) {
  UniqueFd listener = CRYO_TRY(ListenOn(opts.listen));
  if (::mkdir(opts.images_dir.c_str(), 0700) < 0 && errno != EEXIST) {
    return ErrnoError("mkdir {}", opts.images_dir);
  }
  log::Info("page-server: listening on {}, images into {}", opts.listen, opts.images_dir);
  for (;;) {
    UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) return ErrnoError("accept");
    std::string peer = "the dumping cryo";
    CRYO_TRYV(mem::WireHello(conn.get(), false, peer));
    auto end = CRYO_TRY(ReceiveImages(conn.get(), opts.images_dir, peer));
    if (!end.Is(mem::WireType::kDone)) {
      return MakeError(ErrorKind::kCorruptImage, "{} asked for a restore", peer);
    }
    auto ack = mem::WireFrame::Of(mem::WireType::kDone);
    CRYO_TRYV(mem::WireSend(conn.get(), ack));
    log::Info("page-server: received {}", end.addr == 1 ? "a dump: done" : "a pre-dump");
    if (end.addr == 1) return {};
  }
}

}  // namespace

Status PushImage(const std::string& server, const std::string& dir, bool final) {
  UniqueFd conn = CRYO_TRY(mem::WireConnect(server));
  CRYO_TRYV(mem::WireHello(conn.get(), true, server));
  std::string name = fs::path(dir).filename().string();
  if (name.empty()) name = fs::path(dir).parent_path().filename().string();
  if (!mem::WireSafeName(name)) {
    return MakeError(ErrorKind::kInvalidArg, "image directory name '{}' cannot be sent", name);
  }
  CRYO_TRYV(mem::WireSendDir(conn.get(), dir, name));
  auto done = mem::WireFrame::Of(mem::WireType::kDone);
  done.addr = final ? 1 : 0;
  CRYO_TRYV(mem::WireSend(conn.get(), done));
  auto ack = CRYO_TRY(mem::WireRecv(conn.get(), server));
  if (!ack.Is(mem::WireType::kDone)) {
    return MakeError(ErrorKind::kCorruptImage, "page server {} did not acknowledge", server);
  }
  // The pages live on the server now; the rest stays for the next round to read.
  for (const auto& e : fs::directory_iterator(dir)) {
    if (IsPagesFile(e.path().filename().string())) fs::remove(e.path());
  }
  return {};
}

int RunPageServer(const PageServerOptions& opts) {
  if (auto s = PageServer(opts); !s) {
    fmt::print(stderr, "cryo page-server: {}\n", s.error().Message());
    return 1;
  }
  return 0;
}

int RunMigrate(const MigrateOptions& opts) {
  auto r = Migrate(opts);
  if (!r) {
    fmt::print(stderr, "cryo migrate: {}\n", r.error().Message());
    return 1;
  }
  std::string rounds;
  for (uint64_t p : r->rounds) rounds += fmt::format("{}{}", rounds.empty() ? "" : ", ", p);
  fmt::print(
      "migrated pid {}: {} pre-dump rounds (pages: {}), final dump {} pages stored and {} "
      "served after the restore, frozen {:.1f} ms until the destination had the image, "
      "total {:.3f} s\n",
      opts.pid, r->rounds.size(), rounds, r->final_pages_stored, r->final_pages_lazy,
      r->frozen_before_restore * 1e3, r->total_seconds);
  return 0;
}

int RunMigrateReceive(const MigrateReceiveOptions& opts) {
  auto r = MigrateReceive(opts);
  if (!r) {
    fmt::print(stderr, "cryo migrate-receive: {}\n", r.error().Message());
    return 1;
  }
  fmt::print("received: downtime {:.1f} ms, total {:.3f} s\n", r->downtime_seconds * 1e3,
             r->total_seconds);
  return 0;
}

}  // namespace cryo::cli
