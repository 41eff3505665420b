// Benchmark: dump and restore of a process holding N MiB of touched anonymous memory and T
// threads (all idle in pause()), images on tmpfs, against memcpy bandwidth measured in the same
// run. With --procs P the process is the root of a tree of P processes (each parent forks up to
// 4 children; every other process drops the inherited memory and touches 64 KiB of its own).
// Prints one JSON object. With --compress, every run dumps and restores twice, plain and
// with `--compress` (interleaved, so both see the same machine), and the JSON has both series
// and their ratios. --content: what the victim writes in its pages: `sparse` (one word a page,
// the default) or `mixed` (a quarter random bytes, a quarter one word, half small integers:
// something between a heap and a data buffer, for compression ratios).
//
//   dump_restore_bench --cryo PATH [--mib 1024] [--threads 1] [--procs 1] [--runs 3]
//                      [--dir /dev/shm/...] [--compress] [--codec lz4|zstd] [--compress-level 1]
//                      [--content sparse|mixed]
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double MemcpyGiBps(size_t bytes) {
  auto* src = static_cast<char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  auto* dst = static_cast<char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  std::memset(src, 7, bytes);
  std::memset(dst, 1, bytes);
  double best = 0;
  for (int i = 0; i < 3; i++) {
    auto t0 = Clock::now();
    std::memcpy(dst, src, bytes);
    auto t1 = Clock::now();
    best = std::max(best, bytes / Seconds(t0, t1) / (1 << 30));
  }
  ::munmap(src, bytes);
  ::munmap(dst, bytes);
  return best;
}

// Bandwidth of copying into memory never touched before, on every core: on a VM that returns
// freed memory to its host this, not warm memcpy, bounds any tool that writes an image to tmpfs
// or fills a restored process.
double FreshMemcpyGiBps(size_t bytes) {
  auto* src = static_cast<char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  std::memset(src, 7, bytes);
  double best = 0;
  for (int i = 0; i < 2; i++) {
    auto* dst = static_cast<char*>(
        ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    auto t0 = Clock::now();
    std::thread other([&] { std::memcpy(dst, src, bytes / 2); });
    std::memcpy(dst + bytes / 2, src + bytes / 2, bytes / 2);
    other.join();
    auto t1 = Clock::now();
    best = std::max(best, bytes / Seconds(t0, t1) / (1 << 30));
    ::munmap(dst, bytes);
  }
  ::munmap(src, bytes);
  return best;
}

void* Idle(void*) {
  for (;;) ::pause();
}

void Fill(uint64_t* p, size_t bytes, bool mixed) {
  if (!mixed) {
    for (size_t i = 0; i < bytes / 8; i += 512) p[i] = i * 0x9e3779b97f4a7c15ull;
    return;
  }
  uint64_t x = 0x1234567;
  for (size_t page = 0; page < bytes / 4096; page++) {
    uint64_t* w = p + page * 512;
    switch (page % 4) {
      case 0:  // random
        for (int i = 0; i < 512; i++) {
          x ^= x << 13;
          x ^= x >> 7;
          x ^= x << 17;
          w[i] = x;
        }
        break;
      case 1:  // one word
        w[0] = page;
        break;
      default:  // small integers, as counters and indexes are
        for (int i = 0; i < 512; i++) w[i] = (page * 7 + i) % 1000;
    }
  }
}

// Process `index` of the tree below the victim: forks its children (4 index + 1 ... 4 index + 4),
// reports its pid, idles.
[[noreturn]] void TreeNode(int index, int procs, int ready_fd, void* big, size_t bytes) {
  for (int c = 4 * index + 1; c <= 4 * index + 4 && c < procs; c++) {
    pid_t pid = ::fork();
    if (pid < 0) ::_exit(2);
    if (pid == 0) {
      ::munmap(big, bytes);
      auto* own = static_cast<uint64_t*>(
          ::mmap(nullptr, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      for (size_t i = 0; i < (64 << 10) / 8; i += 512) own[i] = i + static_cast<size_t>(c);
      TreeNode(c, procs, ready_fd, nullptr, 0);
    }
  }
  pid_t self = ::getpid();
  (void)!::write(ready_fd, &self, sizeof self);
  ::close(ready_fd);
  for (;;) ::pause();
}

// The victim: touches `bytes` of anonymous memory, starts `threads - 1` more threads and the
// tree of `procs` processes, reports every pid through a pipe, then idles. Returns every pid of
// the tree (the root first).
std::vector<pid_t> StartVictim(size_t bytes, int threads, int procs, bool mixed) {
  int fds[2];
  if (::pipe(fds) != 0) std::exit(2);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    // Only stdio and the ready pipe: fds inherited from whoever runs the bench are not ours.
    for (int fd = 3; fd < 1024; fd++) {
      if (fd != fds[1]) ::close(fd);
    }
    auto* p = static_cast<uint64_t*>(
        ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    Fill(p, bytes, mixed);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int t = 1; t < threads; t++) {
      pthread_t th;
      if (pthread_create(&th, &attr, Idle, nullptr) != 0) ::_exit(2);
    }
    TreeNode(0, procs, fds[1], p, bytes);
  }
  ::close(fds[1]);
  std::vector<pid_t> pids = {pid};
  for (int i = 0; i < procs; i++) {
    pid_t got = 0;
    if (::read(fds[0], &got, sizeof got) != sizeof got) std::exit(2);
    if (got != pid) pids.push_back(got);
  }
  ::close(fds[0]);
  return pids;
}

int Run(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

nlohmann::json ReadJson(const fs::path& p) {
  std::ifstream in(p);
  nlohmann::json j;
  if (in) in >> j;
  return j;
}

uint64_t DirBytes(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

bool WaitGone(pid_t pid, double seconds) {
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  std::string proc = "/proc/" + std::to_string(pid);
  while (::access(proc.c_str(), F_OK) == 0) {
    if (Clock::now() > end) return false;
    ::usleep(1000);
  }
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Series {
  std::vector<double> dump_wall, frozen, restore_wall, image_ratio;
  nlohmann::json per_run = nlohmann::json::array();
};

struct Setup {
  std::string cryo, dir;
  size_t bytes = 0;
  int threads = 1;
  int procs = 1;
  bool mixed = false;
};

// One dump and restore; `extra` are added to the dump command line. False on failure.
bool RunOnce(const Setup& s, const std::vector<std::string>& extra, Series& out) {
  fs::remove_all(s.dir);
  std::vector<pid_t> tree = StartVictim(s.bytes, s.threads, s.procs, s.mixed);
  pid_t victim = tree.front();
  std::vector<std::string> dump = {s.cryo, "dump", "-t", std::to_string(victim), "-D", s.dir};
  dump.insert(dump.end(), extra.begin(), extra.end());
  auto t0 = Clock::now();
  int rc = Run(dump);
  auto t1 = Clock::now();
  if (rc != 0) {
    for (pid_t t : tree) ::kill(t, SIGKILL);  // a failed dump leaves the tree running
  }
  int status = 0;
  ::waitpid(victim, &status, 0);  // reap the dumped (killed) victim: frees its PID
  if (rc != 0) {
    std::fprintf(stderr, "dump failed (%d)\n", rc);
    return false;
  }
  auto stats = ReadJson(fs::path(s.dir) / "stats-dump.json");
  uint64_t image = DirBytes(s.dir);
  auto t2 = Clock::now();
  rc = Run({s.cryo, "restore", "-d", "-D", s.dir});
  auto t3 = Clock::now();
  if (rc != 0) {
    std::fprintf(stderr, "restore failed (%d)\n", rc);
    return false;
  }
  // Restored with the same pids; not our children any more.
  for (pid_t t : tree) ::kill(t, SIGKILL);
  for (pid_t t : tree) WaitGone(t, 10);
  out.dump_wall.push_back(Seconds(t0, t1));
  out.restore_wall.push_back(Seconds(t2, t3));
  out.frozen.push_back(stats.value("frozen_seconds", 0.0));
  out.image_ratio.push_back(static_cast<double>(image) / s.bytes);
  out.per_run.push_back({{"dump_wall_s", Seconds(t0, t1)},
                         {"frozen_s", stats.value("frozen_seconds", 0.0)},
                         {"memory_copy_s", stats["phases"].value("memory_copy_seconds", 0.0)},
                         {"restore_wall_s", Seconds(t2, t3)},
                         {"image_bytes", image},
                         {"compression_ratio", stats.value("compression_ratio", 1.0)}});
  return true;
}

nlohmann::json Summary(const Series& s, double gib) {
  return {
      {"dump_wall_s_median", Median(s.dump_wall)},
      {"dump_gibps_median", gib / Median(s.dump_wall)},
      {"frozen_s_median", Median(s.frozen)},
      {"restore_wall_s_median", Median(s.restore_wall)},
      {"restore_gibps_median", gib / Median(s.restore_wall)},
      {"image_size_ratio_median", Median(s.image_ratio)},
      {"per_run", s.per_run},
  };
}

}  // namespace

int main(int argc, char** argv) {
  Setup setup;
  setup.dir = "/dev/shm/cryo-bench";
  size_t mib = 1024;
  int runs = 3;
  bool compress = false;
  std::string level = "1", codec = "lz4";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--compress") {
      compress = true;
      continue;
    }
    if (i + 1 >= argc) break;
    std::string v = argv[++i];
    if (a == "--cryo")
      setup.cryo = v;
    else if (a == "--mib")
      mib = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--runs")
      runs = std::atoi(v.c_str());
    else if (a == "--threads")
      setup.threads = std::max(1, std::atoi(v.c_str()));
    else if (a == "--procs")
      setup.procs = std::max(1, std::atoi(v.c_str()));
    else if (a == "--dir")
      setup.dir = v;
    else if (a == "--compress-level")
      level = v;
    else if (a == "--codec")
      codec = v;
    else if (a == "--content")
      setup.mixed = v == "mixed";
  }
  if (setup.cryo.empty()) {
    std::fprintf(
        stderr,
        "usage: dump_restore_bench --cryo PATH [--mib N] [--threads N] [--procs N] [--runs N] "
        "[--dir D] [--compress] [--codec lz4|zstd] [--compress-level N] "
        "[--content sparse|mixed]\n");
    return 2;
  }
  setup.bytes = mib << 20;
  double memcpy_gibps = MemcpyGiBps(setup.bytes);
  double fresh_gibps = FreshMemcpyGiBps(setup.bytes);
  Series plain, zstd;
  for (int r = 0; r < runs; r++) {
    if (!RunOnce(setup, {}, plain)) return 1;
    if (compress && !RunOnce(setup, {"--compress=" + codec, "--compress-level", level}, zstd))
      return 1;
  }
  fs::remove_all(setup.dir);
  double gib = static_cast<double>(setup.bytes) / (1 << 30);
  nlohmann::json out = {
      {"benchmark", "dump_restore"},
      {"touched_mib", mib},
      {"threads", setup.threads},
      {"processes", setup.procs},
      {"runs", runs},
      {"content", setup.mixed ? "mixed" : "sparse"},
      {"memcpy_gibps", memcpy_gibps},
      {"fresh_memory_memcpy_gibps", fresh_gibps},
      {"restore_vs_fresh_memcpy", gib / Median(plain.restore_wall) / fresh_gibps},
      {"dump_vs_fresh_memcpy", gib / Median(plain.dump_wall) / fresh_gibps},
      {"dump_vs_memcpy", gib / Median(plain.dump_wall) / memcpy_gibps},
  };
  out.update(Summary(plain, gib));
  if (compress) {
    out["compress_level"] = std::atoi(level.c_str());
    out["codec"] = codec;
    out["compressed"] = Summary(zstd, gib);
    out["compressed_vs_plain"] = {
        {"image_size", Median(zstd.image_ratio) / Median(plain.image_ratio)},
        {"dump_wall", Median(zstd.dump_wall) / Median(plain.dump_wall)},
        {"frozen", Median(zstd.frozen) / Median(plain.frozen)},
        {"restore_wall", Median(zstd.restore_wall) / Median(plain.restore_wall)},
    };
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
