#include "restore/tree.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>

#include "base/log.h"
#include "proc/tasks.h"
#include "ptrace/tracee.h"
#include "restore/blob_stops.h"
#include "restore/child.h"
#include "restore/finalize.h"
#include "restore/inet.h"
#include "sys/syscalls.h"

namespace cryo::restore {
namespace {

using Clock = std::chrono::steady_clock;

void FutexWait(std::atomic<uint32_t>& word, uint32_t seen, int timeout_ms) {
  timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1'000'000L};
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr,
            0);
}

void Announce(TreeControl* c) {
  c->events.fetch_add(1);
  FutexWakeAll(c->events);
}

void SetState(const TreeRestore& tr, size_t i, MemberState s) {
  tr.control->states[i].store(s);
  FutexWakeAll(tr.control->states[i]);
  Announce(tr.control);
}

// In a restored process: waits until `word` reaches `want`. The cryo parent kills the tree on
// any failure, and our parent's death kills us (pdeathsig): no timeout is needed.
void WaitAtLeast(std::atomic<uint32_t>& word, uint32_t want) {
  for (uint32_t v = word.load(); v < want; v = word.load()) FutexWait(word, v, 1000);
}

// The group (or session) id as this restore sees it: the root's caller's group when the root
// was in a group it did not lead (it inherits ours), the dumped number otherwise.
pid_t Translate(const TreeRestore& tr, pid_t id, bool session) {
  const model::Process& root = tr.tree->processes.front();
  if (session) return id == root.sid && root.sid != root.pid ? tr.host_sid : id;
  bool outer = root.pgid != root.pid && root.sid != root.pid;
  return outer && id == root.pgid ? tr.host_pgid : id;
}

[[noreturn]] void DieAsZombie(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    struct rlimit none {};
    ::setrlimit(RLIMIT_CORE, &none);  // a core-dumping signal must leave no file behind
    ::signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::kill(::getpid(), sig);
    ::_exit(128 + sig);  // a signal whose default is to be ignored cannot have killed it
  }
  ::_exit(WEXITSTATUS(status));
}

// A stand-in leader for a group whose leader is gone: leads the group until every member has
// joined it, then exits; its parent reaps it.
Status CreateGroupHelpers(const TreeRestore& tr, size_t index) {
  for (pid_t g : tr.group_helpers[index]) {
    pid_t got = CRYO_TRY_CTX(sys::Clone3WithTid(g, 0), "create helper {} for its group", g);
    if (got == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::setpgid(0, 0) < 0) ::_exit(1);
      WaitAtLeast(tr.control->phase, kPhaseRun);
      ::_exit(0);
    }
  }
  return {};
}

Status ReapGroupHelpers(const TreeRestore& tr, size_t index) {
  for (pid_t g : tr.group_helpers[index]) {
    int status = 0;
    while (::waitpid(g, &status, 0) < 0) {
      if (errno != EINTR) return ErrnoError("reap group helper {}", g);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return MakeError(ErrorKind::kInternal, "helper {} could not lead its group ({:#x})", g,
                       status);
    }
  }
  return {};
}

Status SetupSessionOrGroup(const model::Process& p) {
  if (p.sid == p.pid) {
    if (::setsid() < 0) return ErrnoError("setsid");
  } else if (p.pgid == p.pid) {
    if (::setpgid(0, 0) < 0) return ErrnoError("setpgid (lead group {})", p.pid);
  }
  return {};
}

Status JoinGroup(const TreeRestore& tr, size_t i) {
  const model::Process& p = tr.tree->processes[i];
  if (p.pgid == p.pid || p.sid == p.pid) return {};
  pid_t want = Translate(tr, p.pgid, false);
  if (::getpgrp() == want) return {};
  if (::setpgid(0, want) < 0) {
    if (i == 0) return {};  // best effort: the caller's group may be in another session
    return ErrnoError("join process group {}", p.pgid);
  }
  return {};
}

// Zombie children have exited by now or will: wait until they have (without reaping them), then
// drop the SIGCHLDs they sent. The image's own pending signals are queued later.
Status SettleZombieChildren(const TreeRestore& tr, size_t i) {
  bool any = !tr.group_helpers[i].empty();
  for (size_t c : tr.children[i]) {
    const model::Process& z = tr.tree->processes[c];
    if (!z.zombie) continue;
    any = true;
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(z.pid), &info, WEXITED | WNOWAIT) < 0) {
      if (errno != EINTR) return ErrnoError("wait for zombie {}", z.pid);
    }
  }
  if (!any) return {};
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  timespec zero{};
  while (::sigtimedwait(&chld, nullptr, &zero) > 0) {
  }
  return {};
}

// Whether process i's group needs a helper: its leader is neither in the tree nor the group
// the root inherits from cryo.
bool NeedsHelper(const model::ProcessTree& tree, size_t i) {
  const model::Process& p = tree.processes[i];
  const model::Process& root = tree.processes.front();
  if (i == 0 || p.pgid == p.pid || p.sid == p.pid) return false;
  if (p.pgid == root.pgid && root.pgid != root.pid && root.sid != root.pid) return false;
  return std::none_of(tree.processes.begin(), tree.processes.end(),
                      [&](const model::Process& o) { return o.pid == p.pgid; });
}

}  // namespace

std::vector<pid_t> HelperGroups(const model::ProcessTree& tree) {
  std::vector<pid_t> out;
  for (size_t i = 0; i < tree.processes.size(); i++) {
    pid_t g = tree.processes[i].pgid;
    if (NeedsHelper(tree, i) && std::find(out.begin(), out.end(), g) == out.end()) {
      out.push_back(g);
    }
  }
  return out;
}

Status PrepareTree(TreeRestore& tr, std::vector<UniqueFd>& held) {
  const auto& procs = tr.tree->processes;
  tr.children.assign(procs.size(), {});
  std::vector<size_t>& parent = tr.parents;
  parent.assign(procs.size(), 0);
  for (size_t i = 1; i < procs.size(); i++) {
    for (size_t j = 0; j < i; j++) {
      if (procs[j].pid == procs[i].ppid) {
        tr.children[j].push_back(i);
        parent[i] = j;
        break;
      }
    }
  }
  // The first member's parent (in its session: members share their parent's) creates the helper.
  tr.group_helpers.assign(procs.size(), {});
  std::vector<pid_t> done;
  for (size_t i = 1; i < procs.size(); i++) {
    pid_t g = procs[i].pgid;
    if (!NeedsHelper(*tr.tree, i) || std::find(done.begin(), done.end(), g) != done.end()) {
      continue;
    }
    done.push_back(g);
    tr.group_helpers[parent[i]].push_back(g);
  }
  tr.control_bytes = (sizeof(TreeControl) + procs.size() * sizeof(uint32_t) + 4095) & ~4095ul;
  void* m =
      ::mmap(nullptr, tr.control_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return ErrnoError("map the tree's control block");
  tr.control = static_cast<TreeControl*>(m);  // zero-filled: phase create, every state none
  // The shared files sit above every fd number of the image: allow that many (hard limit).
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  tr.host_pid = ::getpid();
  tr.host_pgid = ::getpgrp();
  tr.host_sid = ::getsid(0);
  // Shared files sit above every fd number of every process: installing fds cannot hit them.
  int base = 3;
  for (const model::Process& p : procs) {
    for (const model::Fd& f : p.fds) base = std::max(base, f.fd + 1);
  }
  tr.shared_fds = CRYO_TRY(OpenSharedFiles(*tr.tree, base + 64, held));
  return {};
}

Status TreeChildCreate(const TreeRestore& tr, size_t index,
                       const std::function<Status()>& before_children) {
  SetState(tr, index, kMemberBorn);
  const model::Process& p = tr.tree->processes[index];
  sigset_t all;
  sigfillset(&all);
  if (::sigprocmask(SIG_SETMASK, &all, nullptr) < 0) return ErrnoError("block signals");
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) return ErrnoError("set pdeathsig");
  pid_t parent = index == 0 ? tr.host_pid : p.ppid;
  if (::getppid() != parent) return MakeError(ErrorKind::kInternal, "parent {} died", parent);
  if (p.control.child_subreaper && ::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    return ErrnoError("set child subreaper");
  }
  CRYO_TRYV(SetupSessionOrGroup(p));
  CRYO_TRYV(CreateGroupHelpers(tr, index));
  CRYO_TRYV(before_children());
  for (size_t c : tr.children[index]) {
    pid_t want = tr.tree->processes[c].pid;
    pid_t got = CRYO_TRY_CTX(sys::Clone3WithTid(want, 0), "create pid {}", want);
    if (got == 0) RunTreeChild(tr, c);  // never returns
  }
  SetState(tr, index, kMemberCreated);
  WaitAtLeast(tr.control->phase, kPhaseJoin);
  CRYO_TRYV(JoinGroup(tr, index));
  SetState(tr, index, kMemberJoined);
  WaitAtLeast(tr.control->phase, kPhaseRun);
  if (p.zombie) DieAsZombie(p.exit_status);
  CRYO_TRYV(ReapGroupHelpers(tr, index));
  return SettleZombieChildren(tr, index);
}

Status TreeChildReady(const TreeRestore& tr, size_t index) {
  SetState(tr, index, kMemberReady);
  WaitAtLeast(tr.control->states[index], kMemberGo);
  return {};
}

namespace {

// The cryo parent's side: watches the error pipe and the processes while the tree works.
class Driver {
 public:
  Driver(const TreeRestore& tr, int error_fd)
      : tr_(tr), procs_(tr.tree->processes), error_fd_(error_fd) {}

  Status Run() {
    CRYO_TRYV(WaitAll(kMemberCreated));
    log::Debug("restore: the tree is created");
    tr_.control->phase.store(kPhaseJoin);
    FutexWakeAll(tr_.control->phase);
    CRYO_TRYV(WaitAll(kMemberJoined));
    log::Debug("restore: process groups joined");
    tr_.control->phase.store(kPhaseRun);
    FutexWakeAll(tr_.control->phase);
    for (size_t i = 0; i < procs_.size(); i++) {
      if (!procs_[i].zombie) CRYO_TRYV(Finish(i));
    }
    // Every process is at its final stop with its registers in place: let them all run. Those
    // stopped by job control go first and are stopped again before any other runs, and the rest
    // go children before parents (the root last): no restored process can see another one still
    // traced, or a job-control stopped one not yet stopped.
    Status first;
    for (Finished& f : finished_) {
      if (procs_[f.index].stopped) Keep(first, Release(f));
    }
    for (Finished& f : finished_) {
      if (procs_[f.index].stopped) AwaitStop(procs_[f.index].pid);
    }
    for (size_t i = finished_.size(); i-- > 0;) Keep(first, Release(finished_[i]));
    finished_.clear();
    return first;
  }

  // Kills every process this restore created and reaps what is ours to reap.
  void KillAll() {
    for (Finished& f : finished_) {
      f.leader.Forget();
      for (auto& t : f.threads) t.Forget();
    }
    finished_.clear();
    for (size_t i = procs_.size(); i-- > 0;) {
      if (tr_.State(i) >= kMemberBorn) ::kill(procs_[i].pid, SIGKILL);
    }
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(-1, &status, __WALL);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) break;
    }
  }

  // What a restored process reported before it exited, if anything.
  std::string ChildError() {
    std::string msg;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(error_fd_, buf, sizeof buf);
      if (n <= 0) break;
      msg.append(buf, static_cast<size_t>(n));
    }
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);  // the first
    return msg;
  }

 private:
  Status Failed(std::string why) {
    std::string msg = ChildError();
    return MakeError(ErrorKind::kInternal, "{}", msg.empty() ? why : msg);
  }

  // A process that should be alive and working but is gone or a zombie.
  std::optional<pid_t> Vanished() {
    for (size_t i = 0; i < procs_.size(); i++) {
      uint32_t s = tr_.State(i);
      if (s < kMemberBorn || (procs_[i].zombie && tr_.control->phase.load() >= kPhaseRun)) {
        continue;
      }
      auto st = proc::ReadStat(procs_[i].pid);
      if (!st || st->state == 'Z' || st->state == 'X') return procs_[i].pid;
    }
    return std::nullopt;
  }

  Status WaitFor(const std::function<bool()>& done, std::string_view what) {
    auto last_check = Clock::now();
    for (;;) {
      uint32_t seen = tr_.control->events.load();
      if (done()) return {};
      pollfd pfd{error_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN)) return Failed("a process failed");
      if (Clock::now() - last_check > std::chrono::milliseconds(100)) {
        last_check = Clock::now();
        if (auto gone = Vanished()) {
          // It may have written its reason just before it went.
          ::usleep(20000);
          return Failed(fmt::format("restore pid {}: the process died while {}", *gone, what));
        }
      }
      FutexWait(tr_.control->events, seen, 20);
    }
  }

  Status WaitAll(MemberState s) {
    return WaitFor(
        [&] {
          for (size_t i = 0; i < procs_.size(); i++) {
            if (tr_.State(i) < s) return false;
          }
          return true;
        },
        s == kMemberCreated ? "creating the tree" : "joining process groups");
  }

  // Seizes process i once it is ready, lets it run its blob and finishes it, short of the detach.
  Status Finish(size_t i) {
    const model::Process& p = procs_[i];
    CRYO_TRYV(WaitFor([&] { return tr_.State(i) >= kMemberReady; }, "rebuilding itself"));
    log::Debug("restore pid {}: rebuilt, running its blob", p.pid);
    constexpr long kOptions = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE;
    if (::ptrace(PTRACE_SEIZE, p.pid, nullptr, kOptions) < 0) {
      return ErrnoError("restore pid {}: seize", p.pid);
    }
    ptrace::Tracee leader = ptrace::Tracee::Adopt(p.pid);
    SetState(tr_, i, kMemberGo);
    std::vector<pid_t> tids;
    for (size_t t = 1; t < p.threads.size(); t++) tids.push_back(p.threads[t].tid);
    auto stops = WaitBlobStops(p.pid, tids);
    if (!stops) {
      leader.Forget();
      return Failed(fmt::format("restore pid {}: {}", p.pid, stops.error().Message()));
    }
    std::vector<ptrace::Tracee> threads;
    for (const BlobStop& s : stops->threads) threads.push_back(ptrace::Tracee::Adopt(s.tid));
    log::Debug("restore pid {}: blob done", p.pid);
    auto done = ReleaseTcpConnections(p.pid, p);  // restore/inet.h
    if (done) done = Finalize(leader, *stops, threads, p, tr_.plans[i]);
    if (!done) {
      leader.Forget();
      for (auto& t : threads) t.Forget();
      return Wrapped(std::move(done).error(), fmt::format("restore pid {}", p.pid));
    }
    finished_.push_back({i, std::move(leader), std::move(threads)});
    log::Debug("restore pid {}: finished", p.pid);
    return {};
  }

  const TreeRestore& tr_;
  const std::vector<model::Process>& procs_;
  int error_fd_;
  // A process at its final stop, still traced.
  struct Finished {
    size_t index;  // in procs_
    ptrace::Tracee leader;
    std::vector<ptrace::Tracee> threads;
  };

  static void Keep(Status& first, Status s) {
    if (!s && first) first = std::move(s);
  }

  // Detaches a finished process; one stopped by job control when dumped is stopped again, once no
  // longer traced, so that the stop is a plain group stop and not a signal a tracer sees and a
  // detach drops. (Like the dump, this lets the process run a moment first.)
  Status Release(Finished& f) {
    if (f.leader.tid() <= 0) return {};  // released already
    Status first;
    for (auto& t : f.threads) Keep(first, t.Detach());
    Keep(first, f.leader.Detach());
    const model::Process& p = procs_[f.index];
    if (p.stopped && ::kill(p.pid, SIGSTOP) < 0) Keep(first, ErrnoError("stop pid {}", p.pid));
    return first;
  }

  // A stop takes effect when the process next runs: wait (bounded) until it shows stopped. One
  // that is slower than that still stops; only the order is lost, so that is not a failure.
  static void AwaitStop(pid_t pid) {
    for (int i = 0; i < 2000; i++) {
      auto st = proc::ReadStat(pid);
      if (!st || st->state == 'T' || st->state == 'Z' || st->state == 'X') return;
      ::usleep(1000);
    }
    log::Warn("pid {} is not stopped again 2 s after its SIGSTOP", pid);
  }

  std::vector<Finished> finished_;
};

}  // namespace

Status DriveTree(const TreeRestore& tr, int error_read_fd) {
  Driver d(tr, error_read_fd);
  auto s = d.Run();
  if (!s) d.KillAll();
  return s;
}

}  // namespace cryo::restore
