// Benchmark of lazy restore and migration (docs/lazy-pages.md, docs/page-server.md). For each
// size (--mib-list, default 256,1024,4096 MiB of touched anonymous memory) a victim is dumped
// and restored twice: eagerly (`restore -d`) and lazily (`lazy-pages` + `restore -d
// --lazy-pages`). Reported: the time from the start of `cryo restore -d` until it returns (the
// process runs by then) and until the victim shows progress again, the daemon's background fill
// throughput and its fault service times (the victim rewrites 1% of its pages every 100 ms, and
// the daemon answers only faults for its first --fill-delay seconds). Then a victim of --mib
// (1024) writing 1% of its pages every 100 ms is moved with `cryo migrate` into a receiver in
// its own PID namespace, --migrations (5) times; each downtime is compared with a plain dump +
// eager restore of the same victim measured just before it. Prints one JSON object.
//
//   lazy_bench --cryo PATH [--mib-list 256,1024,4096] [--mib 1024] [--runs 3] [--migrations 5]
//              [--dir ...]
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The victim: `mib` MiB touched, then every 100 ms it rewrites 1% of its pages (a different
// set each time) and bumps a counter in a shared file mapping (`progress`) that the bench reads.
[[noreturn]] void VictimMain(size_t mib, const std::string& progress) {
  int fd = ::open(progress.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::ftruncate(fd, 4096) != 0) ::_exit(2);
  auto* counter = static_cast<volatile uint64_t*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ::close(fd);
  size_t bytes = mib << 20;
  auto* mem = static_cast<char*>(
      ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED || counter == MAP_FAILED) ::_exit(2);
  ::madvise(mem, bytes, MADV_NOHUGEPAGE);
  size_t pages = bytes / 4096;
  for (size_t i = 0; i < pages; i++) mem[i * 4096] = static_cast<char>(i | 1);
  for (uint64_t round = 1;; round++) {
    for (size_t i = round % 100; i < pages; i += 100) mem[i * 4096 + 8] = static_cast<char>(round);
    *counter = round;
    ::usleep(100 * 1000);
  }
}

struct Victim {
  pid_t pid = -1;
  std::string progress;
};

Victim StartVictim(size_t mib, const std::string& progress) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::close_range(3, ~0u, 0);  // only stdio: fds of whoever runs the bench are not its own
    ::setsid();
    VictimMain(mib, progress);
  }
  return {pid, progress};
}

uint64_t Progress(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  uint64_t v = 0;
  f.read(reinterpret_cast<char*>(&v), sizeof v);
  return v;
}

// Waits until the counter has moved twice (first write after a fill, then a steady one).
bool WaitRunning(const std::string& progress, double timeout) {
  auto t0 = Clock::now();
  uint64_t start = Progress(progress);
  while (Seconds(t0, Clock::now()) < timeout) {
    if (Progress(progress) >= start + 2) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

bool Exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// Ends a restored victim (not our child after restore -d) by its pid and waits until it is gone.
void EndRestored(pid_t pid) {
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 5000 && Exists(pid); i++) {
    ::waitpid(pid, nullptr, WNOHANG);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out = "/dev/null") {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(o, 1);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

int Wait(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int Run(const std::vector<std::string>& argv) { return Wait(Spawn(argv)); }

nlohmann::json ReadJson(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f, nullptr, false);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "lazy_bench: %s\n", what.c_str());
  std::exit(1);
}

// The same-run baseline of the background fill: memcpy of `mib` MiB from a warm 2 MiB buffer into
// fresh anonymous memory (no huge pages, as the victim), GiB/s. Both pay this VM's cost of memory
// first touched (KERNEL.md: 0.35-1.6 GiB/s, varying 2-3x between runs); the fill also maps each
// page into another process.
double FreshCopyGiBps(size_t mib) {
  constexpr size_t kChunk = 2 << 20;
  std::vector<char> src(kChunk, 1);
  size_t bytes = mib << 20;
  auto* dst = static_cast<char*>(
      ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (dst == MAP_FAILED) return 0;
  ::madvise(dst, bytes, MADV_NOHUGEPAGE);
  auto t0 = Clock::now();
  for (size_t off = 0; off < bytes; off += kChunk) std::memcpy(dst + off, src.data(), kChunk);
  double s = Seconds(t0, Clock::now());
  ::munmap(dst, bytes);
  return static_cast<double>(bytes) / (1 << 30) / s;
}

struct RestoreRun {
  // restore_s: cryo's own measure (stats-restore.json: from its start until the processes run,
  // less waiting for the PIDs to be free); restore_wall_s: the whole `cryo restore -d` command.
  double dump_s = 0, restore_s = 0, restore_wall_s = 0, running_s = 0;
  nlohmann::json lazy;            // stats-lazy.json
  double fresh_copy_gibps = 0;    // FreshCopyGiBps right after the fill (lazy runs)
  nlohmann::json restore_phases;  // stats-restore.json: where restore_s went
};

RestoreRun DumpAndRestore(const std::string& cryo, const fs::path& dir, size_t mib, bool lazy) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  Victim v = StartVictim(mib, (dir / "progress").string());
  if (!WaitRunning(v.progress, 120)) Fail("the victim never ran");
  RestoreRun r;
  fs::path images = dir / "images";
  // Each timed step starts with no dirty page cache: with --dir on a disk, the previous step's
  // writeback (GiBs of images) is not charged to the next one.
  ::sync();
  auto t0 = Clock::now();
  if (Run({cryo, "dump", "-t", std::to_string(v.pid), "-D", images.string()}) != 0) {
    Fail("dump");
  }
  r.dump_s = Seconds(t0, Clock::now());
  ::waitpid(v.pid, nullptr, 0);  // the dump killed it: reaped, its pid is free
  pid_t daemon = -1;
  if (lazy) {
    daemon = Spawn({cryo, "lazy-pages", "-D", images.string(), "--fill-delay", "1"});
    for (int i = 0; i < 5000 && !fs::exists(images / "lazy-pages.sock"); i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::vector<std::string> restore = {cryo, "restore", "-D", images.string(), "-d"};
  if (lazy) restore.push_back("--lazy-pages");
  ::sync();
  auto t1 = Clock::now();
  if (Run(restore) != 0) Fail("restore");
  r.restore_wall_s = Seconds(t1, Clock::now());
  nlohmann::json rs = ReadJson(images / "stats-restore.json");
  if (!rs.is_object()) Fail("no stats-restore.json");
  r.restore_s = rs.value("restore_seconds", 0.0);
  r.restore_phases = rs.value("phases", nlohmann::json::object());
  if (!WaitRunning(v.progress, 60)) Fail("the restored victim makes no progress");
  r.running_s = Seconds(t1, Clock::now());
  if (lazy) {
    if (Wait(daemon) != 0) Fail("lazy-pages");
    r.lazy = ReadJson(images / "stats-lazy.json");
    if (!r.lazy.is_object()) Fail("no stats-lazy.json");
    r.fresh_copy_gibps = FreshCopyGiBps(mib);
  }
  EndRestored(v.pid);
  fs::remove_all(dir);
  return r;
}

// Moves a victim of `mib` MiB with cryo migrate into a receiver in its own PID namespace.
nlohmann::json Migrate(const std::string& cryo, const fs::path& dir, size_t mib) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  Victim v = StartVictim(mib, (dir / "progress").string());
  if (!WaitRunning(v.progress, 120)) Fail("the migration victim never ran");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string stop = (dir / "STOP").string();
  std::string port = std::to_string(20000 + ::getpid() % 20000);
  // PID 1 of the receiver's namespace lives until STOP exists: the migrated process with it.
  pid_t receiver = Spawn(
      {"unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
       "\"$@\"; rc=$?; while [ ! -e " + stop + " ]; do sleep 0.05; done; exit $rc", "sh", cryo,
       "migrate-receive", "--listen", "127.0.0.1:" + port, "-D", (dir / "received").string()});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string out = (dir / "migrate.out").string();
  ::sync();
  auto t0 = Clock::now();
  pid_t mig =
      Spawn({cryo, "migrate", "-t", std::to_string(v.pid), "--to", "127.0.0.1:" + port}, out);
  int rc = Wait(mig);
  double wall = Seconds(t0, Clock::now());
  ::waitpid(v.pid, nullptr, 0);  // the source, killed once its pages went over
  if (rc != 0) Fail("migrate");
  bool running = WaitRunning(v.progress, 30);
  nlohmann::json stats(nlohmann::json::value_t::discarded);
  for (int i = 0; i < 3000 && stats.is_discarded(); i++) {
    if (fs::exists(dir / "received" / "stats-migrate.json")) {
      stats = ReadJson(dir / "received" / "stats-migrate.json");
    } else {
      stats = nlohmann::json(nlohmann::json::value_t::discarded);
    }
    if (stats.is_discarded()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Where the downtime went: the final dump's frozen phases (sent with its image) and the
  // receiver's restore until the process ran.
  nlohmann::json dump = ReadJson(dir / "received" / "final" / "stats-dump.json");
  nlohmann::json restore = ReadJson(dir / "received" / "final" / "stats-restore.json");
  nlohmann::json parts = nlohmann::json::object();
  if (!dump.is_discarded()) {
    parts["final_dump_frozen_s"] = dump.value("frozen_seconds", 0.0);
    for (const auto& [k, val] : dump["phases"].items()) {
      parts["final_dump_" + k.substr(0, k.size() - 8) + "_s"] = val;  // "..._seconds"
    }
  }
  if (!restore.is_discarded()) {
    parts["restore_s"] = restore.value("restore_seconds", 0.0);
    for (const auto& [k, val] : restore["phases"].items()) {
      parts["restore_" + k.substr(0, k.size() - 8) + "_s"] = val;
    }
  }
  std::ofstream(stop).put('\n');
  Wait(receiver);
  std::ifstream f(out);
  std::stringstream line;
  line << f.rdbuf();
  fs::remove_all(dir);
  if (!running) Fail("the migrated victim makes no progress");
  if (stats.is_discarded()) Fail("no stats-migrate.json");
  return {
      {"mib", mib},
      {"downtime_s", stats.value("downtime_seconds", 0.0)},
      {"source_frozen_before_restore_s", stats.value("source_frozen_before_restore_seconds", 0.0)},
      {"total_s", stats.value("total_seconds", 0.0)},
      {"migrate_wall_s", wall},
      {"downtime_parts", parts},
      {"migrate_output", line.str()}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string cryo, dir = "/dev/shm/cryo-lazy-bench";
  std::vector<size_t> sizes = {256, 1024, 4096};
  size_t mib = 1024;
  int n_runs = 3;
  int n_migrations = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--cryo") cryo = argv[i + 1];
    if (k == "--dir") dir = argv[i + 1];
    if (k == "--mib") mib = std::stoul(argv[i + 1]);
    if (k == "--runs") n_runs = std::max(1, std::stoi(argv[i + 1]));
    if (k == "--migrations") n_migrations = std::max(0, std::stoi(argv[i + 1]));
    if (k == "--mib-list") {
      sizes.clear();
      std::stringstream ss(argv[i + 1]);
      for (std::string s; std::getline(ss, s, ',');) {
        if (!s.empty()) sizes.push_back(std::stoul(s));
      }
    }
  }
  if (cryo.empty()) {
    std::fprintf(stderr,
                 "usage: lazy_bench --cryo PATH [--mib-list 256,1024,4096] [--mib 1024] "
                 "[--runs 3] [--migrations 5] [--dir DIR]\n");
    return 2;
  }
  cryo = fs::absolute(cryo).string();
  nlohmann::json out = {{"benchmark", "lazy_restore"}};
  nlohmann::json per_size = nlohmann::json::array();
  for (size_t s : sizes) {
    // Medians over the runs (the first restore of a run is often slow here: fresh memory).
    std::vector<double> eager_r, lazy_r, lazy_wall, dump, bg, fresh, bg_ratio, fmed, fp99;
    nlohmann::json runs = nlohmann::json::array();
    for (int i = 0; i < n_runs; i++) {
      RestoreRun eager = DumpAndRestore(cryo, dir, s, false);
      RestoreRun lazy = DumpAndRestore(cryo, dir, s, true);
      eager_r.push_back(eager.restore_s);
      lazy_r.push_back(lazy.restore_s);
      lazy_wall.push_back(lazy.restore_wall_s);
      dump.push_back(eager.dump_s);
      bg.push_back(lazy.lazy.value("background_gibps", 0.0));
      fresh.push_back(lazy.fresh_copy_gibps);
      bg_ratio.push_back(fresh.back() > 0 ? bg.back() / fresh.back() : 0);
      fmed.push_back(lazy.lazy.value("fault_us_median", 0.0));
      fp99.push_back(lazy.lazy.value("fault_us_p99", 0.0));
      runs.push_back({{"eager_restore_s", eager.restore_s},
                      {"lazy_restore_s", lazy.restore_s},
                      {"lazy_restore_wall_s", lazy.restore_wall_s},
                      {"lazy_restore_phases", lazy.restore_phases},
                      {"dump_s", eager.dump_s},
                      {"lazy_until_progress_s", lazy.running_s},
                      {"background_gibps", bg.back()},
                      {"fresh_memcpy_gibps", fresh.back()},
                      {"faults", lazy.lazy.value("faults", 0)},
                      {"pages_on_fault", lazy.lazy.value("pages_on_fault", 0)},
                      {"pages_background", lazy.lazy.value("pages_background", 0)}});
    }
    per_size.push_back({{"mib", s},
                        {"lazy_restore_s_median", Median(lazy_r)},
                        {"lazy_restore_s_max", *std::max_element(lazy_r.begin(), lazy_r.end())},
                        {"lazy_restore_wall_s_median", Median(lazy_wall)},
                        {"eager_restore_s_median", Median(eager_r)},
                        {"dump_s_median", Median(dump)},
                        {"background_gibps_median", Median(bg)},
                        {"fresh_memcpy_gibps_median", Median(fresh)},
                        {"background_vs_fresh_memcpy_median", Median(bg_ratio)},
                        {"fault_us_median", Median(fmed)},
                        {"fault_us_p99_median", Median(fp99)},
                        {"runs", runs}});
  }
  out["restore"] = per_size;
  // Each migration is paired with a plain dump + eager restore of the same victim measured just
  // before it: the ratio of each pair, then the median (this VM's speed drifts between runs).
  nlohmann::json migrations = nlohmann::json::array();
  std::vector<double> ratios, downtimes, plains;
  for (int i = 0; i < n_migrations; i++) {
    RestoreRun plain = DumpAndRestore(cryo, dir, mib, false);
    double plain_s = plain.dump_s + plain.restore_s;
    nlohmann::json m = Migrate(cryo, dir, mib);
    double down = m["downtime_s"].get<double>();
    m["plain_dump_restore_s"] = plain_s;
    m["downtime_ratio"] = plain_s > 0 ? down / plain_s : 0;
    ratios.push_back(m["downtime_ratio"].get<double>());
    downtimes.push_back(down);
    plains.push_back(plain_s);
    migrations.push_back(m);
  }
  out["migration"] = {
      {"mib", mib},
      {"downtime_s_median", Median(downtimes)},
      {"plain_dump_restore_s_median", Median(plains)},
      {"downtime_ratio_median", Median(ratios)},
      {"downtime_ratio_max", ratios.empty() ? 0 : *std::max_element(ratios.begin(), ratios.end())},
      {"runs", migrations}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
