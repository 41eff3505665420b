// Benchmark of incremental pre-copy: a process with 1 GiB (--mib) of touched anonymous memory
// writes 1% of its pages between rounds. Reports each pre-dump round's stored bytes and frozen
// time, the final incremental dump's frozen time against a full dump's, and how much slower a
// write-heavy loop runs while the dirty tracker is armed. Prints one JSON object.
//
//   incremental_bench --cryo PATH [--mib 1024] [--dir /dev/shm/...]
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
#include <numeric>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
constexpr int kPasses = 5;  // write-loop passes timed per measurement

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The victim answers one-byte commands on a pipe: 'w' writes 1% of its pages (a different
// scattered set each time), 'p' times one pass writing every page; it replies with a double.
struct Victim {
  pid_t pid = -1;
  int cmd = -1, reply = -1;

  double Ask(char c) const {
    if (::write(cmd, &c, 1) != 1) std::exit(2);
    double v = 0;
    if (::read(reply, &v, sizeof v) != sizeof v) std::exit(2);
    return v;
  }
};

[[noreturn]] void VictimMain(size_t bytes, int cmd, int reply) {
  auto* mem = static_cast<char*>(
      ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED) ::_exit(2);
  ::madvise(mem, bytes, MADV_NOHUGEPAGE);  // 4 KiB pages: what the tracker works on
  std::memset(mem, 1, bytes);
  size_t pages = bytes / 4096;
  uint64_t round = 0;
  double ready = 0;
  if (::write(reply, &ready, sizeof ready) != sizeof ready) ::_exit(2);
  char c;
  while (::read(cmd, &c, 1) == 1) {
    double v = 0;
    if (c == 'w') {
      round++;
      for (size_t i = round % 100; i < pages; i += 100)
        mem[i * 4096 + 8] = static_cast<char>(round);
    } else if (c == 'p') {
      auto t0 = Clock::now();
      for (size_t i = 0; i < pages; i++) mem[i * 4096 + 16]++;
      v = Seconds(t0, Clock::now());
    }
    if (::write(reply, &v, sizeof v) != sizeof v) ::_exit(2);
  }
  ::_exit(0);
}

Victim StartVictim(size_t bytes) {
  int a[2], b[2];
  if (::pipe(a) != 0 || ::pipe(b) != 0) std::exit(2);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(a[1]);
    ::close(b[0]);
    // The pipes become stdin and stdout: cryo dump accepts any file at fds 0-2.
    ::dup2(a[0], 0);
    ::dup2(b[1], 1);
    ::close(a[0]);
    ::close(b[1]);
    // Only stdio: fds inherited from whoever runs the bench are not the victim's own.
    ::close_range(3, ~0u, 0);
    ::setsid();
    VictimMain(bytes, 0, 1);
  }
  ::close(a[0]);
  ::close(b[1]);
  Victim v{pid, a[1], b[0]};
  double ready = 0;
  if (::read(v.reply, &ready, sizeof ready) != sizeof ready) std::exit(2);
  return v;
}

int Run(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

nlohmann::json Stats(const fs::path& dir) {
  std::ifstream f(dir / "stats-dump.json");
  return nlohmann::json::parse(f, nullptr, false);
}

nlohmann::json Summary(const nlohmann::json& s) {
  return {{"frozen_s", s.value("frozen_seconds", 0.0)},
          {"total_s", s.value("total_seconds", 0.0)},
          {"bytes_stored", s.value("bytes_written", 0)},
          {"pages_stored", s.value("pages_written", 0)},
          {"pages_unchanged", s.value("pages_unchanged", 0)},
          {"phases", s.value("phases", nlohmann::json::object())}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string cryo, dir = "/dev/shm/cryo-incremental-bench";
  size_t mib = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--cryo") cryo = argv[i + 1];
    if (k == "--mib") mib = std::stoul(argv[i + 1]);
    if (k == "--dir") dir = argv[i + 1];
  }
  if (cryo.empty()) {
    std::fprintf(stderr, "usage: incremental_bench --cryo PATH [--mib N] [--dir DIR]\n");
    return 2;
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  Victim v = StartVictim(mib << 20);
  std::string pid = std::to_string(v.pid);
  auto run = [&](std::vector<std::string> args, const std::string& what) {
    args.insert(args.begin(), cryo);
    if (Run(args) != 0) {
      std::fprintf(stderr, "incremental_bench: %s failed\n", what.c_str());
      ::kill(v.pid, SIGKILL);
      std::exit(1);
    }
  };
  nlohmann::json out = {{"mib", mib}, {"written_per_round", "1% of pages"}};

  // An identical process that is never tracked: its passes, timed alternately with the tracked
  // one's, cancel the machine's noise. Two equal areas differ in speed by their physical layout
  // (up to 1.4x here), so the ratio is taken relative to the ratio before any tracking.
  Victim control = StartVictim(mib << 20);
  auto passes = [&](double& tracked, double& ctl) {
    tracked = ctl = 0;
    for (int i = 0; i < kPasses; i++) {
      ctl += control.Ask('p') / kPasses;
      tracked += v.Ask('p') / kPasses;
    }
  };
  v.Ask('p');  // the first passes after the fill may still be settling
  control.Ask('p');
  double untracked_pass = 0, control_pass = 0;
  passes(untracked_pass, control_pass);
  double base_ratio = untracked_pass / control_pass;
  run({"dump", "-t", pid, "-D", dir + "/full", "-R"}, "full dump");
  out["full_dump"] = Summary(Stats(dir + "/full"));
  fs::remove_all(dir + "/full");

  nlohmann::json rounds = nlohmann::json::array();
  std::string prev;
  for (int i = 1; i <= 3; i++) {
    std::string d = dir + "/pre-" + std::to_string(i);
    std::vector<std::string> args = {"pre-dump", "-t", pid, "-D", d};
    if (!prev.empty()) args.insert(args.end(), {"--prev-images-dir", prev});
    run(args, "pre-dump");
    rounds.push_back(Summary(Stats(d)));
    prev = "../pre-" + std::to_string(i);
    v.Ask('w');
  }
  out["pre_dump_rounds"] = rounds;
  run({"dump", "-t", pid, "-D", dir + "/final", "--prev-images-dir", prev, "-R"}, "final dump");
  out["final_incremental_dump"] = Summary(Stats(dir + "/final"));
  double f_full = out["full_dump"]["frozen_s"], f_inc = out["final_incremental_dump"]["frozen_s"];
  out["frozen_ratio_incremental_vs_full"] = f_full > 0 ? f_inc / f_full : 0;

  // Write-heavy loop: one pass writing every page, untracked vs right after a round armed the
  // tracker (every page protected: one kernel-resolved fault each) vs the pass after that.
  run({"pre-dump", "-t", pid, "-D", dir + "/arm"}, "arming pre-dump");
  double tracked_first = v.Ask('p');
  double tracked_second = v.Ask('p');
  out["write_loop"] = {
      {"pages", (mib << 20) / 4096},
      {"untracked_pass_s", untracked_pass},
      {"tracked_first_pass_s", tracked_first},
      {"tracked_later_pass_s", tracked_second},
      {"slowdown_first_pass", tracked_first / untracked_pass},
      {"per_page_fault_us", (tracked_first - untracked_pass) * 1e6 / ((mib << 20) / 4096)}};

  // The same loop running on while pre-dump rounds go on: kPasses passes between rounds, against
  // the control's. Chunks the loop rewrites become hot after the first round (unprotected,
  // copied whole), so from then on it should run as fast as untracked; every 8th round of a
  // chain re-arms them once.
  nlohmann::json loop_rounds = nlohmann::json::array();
  std::string last = "arm";
  std::vector<double> after_first;
  for (int r = 1; r <= 10; r++) {
    double t = 0, c = 0;
    passes(t, c);
    std::string d = "loop-" + std::to_string(r);
    run({"pre-dump", "-t", pid, "-D", dir + "/" + d, "--prev-images-dir", "../" + last},
        "pre-dump during the write loop");
    auto s = Stats(dir + "/" + d);
    loop_rounds.push_back({{"pass_s", t},
                           {"control_pass_s", c},
                           {"slowdown", t / c / base_ratio},
                           {"pages_hot", s.value("pages_hot", 0)},
                           {"bytes_stored", s.value("bytes_written", 0)}});
    if (r > 1) after_first.push_back(t / c / base_ratio);
    fs::remove_all(dir + "/" + last);
    last = d;
  }
  out["write_loop_between_rounds"] = {
      {"passes_per_round", kPasses},
      {"untracked_vs_control_before", base_ratio},
      {"rounds", loop_rounds},
      {"mean_slowdown_after_first_round",
       std::accumulate(after_first.begin(), after_first.end(), 0.0) / after_first.size()},
      {"median_slowdown_after_first_round", Median(after_first)}};

  for (pid_t p : {v.pid, control.pid}) {
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, 0);
  }
  fs::remove_all(dir);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
