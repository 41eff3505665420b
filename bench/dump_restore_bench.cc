// Benchmark: dump and restore of a process holding N MiB of touched anonymous memory and T
// threads (all idle in pause()), images on tmpfs, against memcpy bandwidth measured in the same
// run. With --procs P the process is the root of a tree of P processes (each parent forks up to
// 4 children; every other process drops the inherited memory and touches 64 KiB of its own).
// Prints one JSON object.
//
//   dump_restore_bench --cryo PATH [--mib 1024] [--threads 1] [--procs 1] [--runs 3]
//                      [--dir /dev/shm/...]
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

// Process `index` of the tree below the victim: forks its children (4 index + 1 ... 4 index + 4),
// reports its pid, idles.
[[noreturn]] void TreeNode(int index, int procs, int ready_fd, void* big, size_t bytes) {
  for (int c = 4 * index + 1; c <= 4 * index + 4 && c < procs; c++) {
    pid_t pid = ::fork();
    if (pid < 0) ::_exit(2);
    if (pid == 0) {
      ::munmap(big, bytes);
      auto* own = static_cast<uint64_t*>(::mmap(nullptr, 64 << 10, PROT_READ | PROT_WRITE,
                                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
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
std::vector<pid_t> StartVictim(size_t bytes, int threads, int procs) {
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
    for (size_t i = 0; i < bytes / 8; i += 512) p[i] = i * 0x9e3779b97f4a7c15ull;
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

}  // namespace

int main(int argc, char** argv) {
  std::string cryo, dir = "/dev/shm/cryo-bench";
  size_t mib = 1024;
  int runs = 3;
  int threads = 1;
  int procs = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--cryo")
      cryo = argv[i + 1];
    else if (a == "--mib")
      mib = std::strtoul(argv[i + 1], nullptr, 10);
    else if (a == "--runs")
      runs = std::atoi(argv[i + 1]);
    else if (a == "--threads")
      threads = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--procs")
      procs = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--dir")
      dir = argv[i + 1];
  }
  if (cryo.empty()) {
    std::fprintf(
        stderr,
        "usage: dump_restore_bench --cryo PATH [--mib N] [--threads N] [--procs N] [--runs N] "
        "[--dir D]\n");
    return 2;
  }
  size_t bytes = mib << 20;
  double memcpy_gibps = MemcpyGiBps(bytes);
  double fresh_gibps = FreshMemcpyGiBps(bytes);
  std::vector<double> dump_wall, frozen, restore_wall, image_ratio;
  nlohmann::json per_run = nlohmann::json::array();
  for (int r = 0; r < runs; r++) {
    fs::remove_all(dir);
    std::vector<pid_t> tree = StartVictim(bytes, threads, procs);
    pid_t victim = tree.front();
    auto t0 = Clock::now();
    int rc = Run({cryo, "dump", "-t", std::to_string(victim), "-D", dir});
    auto t1 = Clock::now();
    if (rc != 0) {
      for (pid_t t : tree) ::kill(t, SIGKILL);  // a failed dump leaves the tree running
    }
    int status = 0;
    ::waitpid(victim, &status, 0);  // reap the dumped (killed) victim: frees its PID
    if (rc != 0) {
      std::fprintf(stderr, "dump failed (%d)\n", rc);
      return 1;
    }
    auto stats = ReadJson(fs::path(dir) / "stats-dump.json");
    uint64_t image = DirBytes(dir);
    auto t2 = Clock::now();
    rc = Run({cryo, "restore", "-d", "-D", dir});
    auto t3 = Clock::now();
    if (rc != 0) {
      std::fprintf(stderr, "restore failed (%d)\n", rc);
      return 1;
    }
    // Restored with the same pids; not our children any more.
    for (pid_t t : tree) ::kill(t, SIGKILL);
    for (pid_t t : tree) WaitGone(t, 10);
    dump_wall.push_back(Seconds(t0, t1));
    restore_wall.push_back(Seconds(t2, t3));
    frozen.push_back(stats.value("frozen_seconds", 0.0));
    image_ratio.push_back(static_cast<double>(image) / bytes);
    per_run.push_back({{"dump_wall_s", Seconds(t0, t1)},
                       {"frozen_s", stats.value("frozen_seconds", 0.0)},
                       {"memory_copy_s", stats["phases"].value("memory_copy_seconds", 0.0)},
                       {"restore_wall_s", Seconds(t2, t3)},
                       {"image_bytes", image}});
  }
  fs::remove_all(dir);
  double gib = static_cast<double>(bytes) / (1 << 30);
  nlohmann::json out = {
      {"benchmark", "dump_restore"},
      {"touched_mib", mib},
      {"threads", threads},
      {"processes", procs},
      {"runs", runs},
      {"memcpy_gibps", memcpy_gibps},
      {"fresh_memory_memcpy_gibps", fresh_gibps},
      {"restore_vs_fresh_memcpy", gib / Median(restore_wall) / fresh_gibps},
      {"dump_vs_fresh_memcpy", gib / Median(dump_wall) / fresh_gibps},
      {"dump_wall_s_median", Median(dump_wall)},
      {"dump_gibps_median", gib / Median(dump_wall)},
      {"frozen_s_median", Median(frozen)},
      {"restore_wall_s_median", Median(restore_wall)},
      {"restore_gibps_median", gib / Median(restore_wall)},
      {"image_size_ratio_median", Median(image_ratio)},
      {"dump_vs_memcpy", gib / Median(dump_wall) / memcpy_gibps},
      {"per_run", per_run},
  };
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
