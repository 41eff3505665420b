#include "restore/restore.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "base/io.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/page_chain.h"
#include "image/tree_io.h"
#include "ptrace/tracee.h"
#include "restore/blob_stops.h"
#include "restore/child.h"
#include "restore/fd_tty.h"
#include "restore/finalize.h"
#include "restore/inet.h"
#include "restore/lazy.h"
#include "restore/plan.h"
#include "restore/tree.h"
#include "restorer/blob.h"
#include "sys/syscalls.h"

namespace cryo::restore {
namespace {

using Clock = std::chrono::steady_clock;

// A dumped process may linger as a zombie for a moment (its parent reaps it lazily): wait, within
// a bound, until its PID (or a thread's TID: /proc/TID exists for threads too) is free.
Status WaitPidFree(pid_t pid, double seconds) {
  auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  std::string path = fmt::format("/proc/{}", pid);
  struct stat st {};
  while (::stat(path.c_str(), &st) == 0) {
    if (Clock::now() > deadline) {
      return MakeError(ErrorKind::kInvalidArg, "pid {} is in use by another process", pid);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {};
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return ErrnoError("pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Status WriteStats(const std::string& dir, const RestoreResult& r, const model::ProcessTree& tree) {
  uint64_t pages = 0, vmas = 0, fds = 0, live = 0;
  for (const model::Process& p : tree.processes) {
    live += !p.zombie;
    vmas += p.vmas.size();
    fds += p.fds.size();
    for (const auto& run : p.pagemap) {
      if (run.flags & model::kPagePresent) pages += run.nr_pages;
    }
  }
  nlohmann::json j = {{"pid", r.pid},
                      {"processes", live},
                      {"zombies", tree.processes.size() - live},
                      {"restore_seconds", r.restore_seconds},
                      {"pid_wait_seconds", r.pid_wait_seconds},
                      {"phases",
                       {{"read_seconds", r.read_seconds},
                        {"plan_seconds", r.plan_seconds},
                        {"tree_seconds", r.tree_seconds}}},
                      {"pages_restored", pages},
                      {"bytes_restored", pages * 4096},
                      {"mappings", vmas},
                      {"fds", fds}};
  return WriteWholeFile(dir + "/stats-restore.json", j.dump(2) + "\n");
}

// Copy-on-write (docs/restore.md): each premap slot of process `i` holding INHERITED pages is
// moved from the parent's slot of the vma they come from, which the parent fills before it
// creates its children and hands down to them.
Status PlanInheritance(TreeRestore& tr, size_t i, size_t parent) {
  const model::Process& p = tr.tree->processes[i];
  const model::Process& pp = tr.tree->processes[parent];
  Plan& plan = tr.plans[i];
  Plan& pplan = tr.plans[parent];
  auto run = p.pagemap.begin();
  for (PremapSlot& slot : plan.premap) {
    const model::Vma& v = p.vmas[slot.vma_index];
    bool inherits = false;
    for (; run != p.pagemap.end() && run->vaddr < v.end; ++run) {
      inherits = inherits || (run->vaddr >= v.start && (run->flags & model::kPageInherited));
    }
    if (!inherits) continue;
    const model::Vma* src = model::InheritSource(pp.vmas, v);
    auto from = std::find_if(pplan.premap.begin(), pplan.premap.end(), [&](const PremapSlot& s) {
      return src != nullptr && &pp.vmas[s.vma_index] == src;
    });
    if (from == pplan.premap.end()) {
      return MakeError(ErrorKind::kCorruptImage,
                       "pid {}: pages at {:#x} are inherited from parent {}, which has no "
                       "mapping for them",
                       p.pid, v.start, pp.pid);
    }
    slot.inherit_from = from->addr + (v.start - src->start);
    size_t j = static_cast<size_t>(from - pplan.premap.begin());
    if (std::find(pplan.cow_slots.begin(), pplan.cow_slots.end(), j) == pplan.cow_slots.end()) {
      pplan.cow_slots.push_back(j);
    }
  }
  return {};
}

// Plans every live process of the tree; the plans live in the cryo parent's memory, which each
// restored process inherits. Their keep regions do not overlap: a child created after its parent
// filled its memory (copy-on-write) still has the parent's keep region when it reserves its own.
Status PlanTree(TreeRestore& tr, const std::vector<std::optional<image::PageChain>>& chains) {
  auto busy = CRYO_TRY(SelfMappings());
  const auto& procs = tr.tree->processes;
  tr.plans.resize(procs.size());
  tr.chains.assign(procs.size(), nullptr);
  for (size_t i = 0; i < procs.size(); i++) {
    if (procs[i].zombie) continue;
    tr.plans[i] = CRYO_TRY_CTX(
        MakePlan(procs[i], busy, restorer::BlobImage().size(), ArenaBytes(procs[i], 1)),
        "plan pid {}", procs[i].pid);
    busy.push_back({tr.plans[i].keep_start, tr.plans[i].keep_end});
    tr.chains[i] = &*chains[i];
    log::Debug("pid {}: keep region {:#x}-{:#x}", procs[i].pid, tr.plans[i].keep_start,
               tr.plans[i].keep_end);
  }
  for (size_t parent = 0; parent < procs.size(); parent++) {
    for (size_t c : tr.children[parent]) {
      if (!procs[c].zombie) CRYO_TRYV(PlanInheritance(tr, c, parent));
    }
  }
  return {};
}

// Lazy restore: which vmas each process leaves to the daemon, which must be listening. Returns
// whether any process leaves it pages (and so hands itself over).
Result<bool> PrepareLazy(TreeRestore& tr, const std::string& images_dir, bool parent_pages) {
  const auto& procs = tr.tree->processes;
  tr.lazy_vmas.assign(procs.size(), {});
  bool any = false;
  for (size_t i = 0; i < procs.size(); i++) {
    if (procs[i].zombie) continue;
    tr.lazy_vmas[i] = LazyVmas(*tr.tree, i, parent_pages);
    any = any ||
          std::find(tr.lazy_vmas[i].begin(), tr.lazy_vmas[i].end(), true) != tr.lazy_vmas[i].end();
  }
  tr.lazy_socket = LazySocketPath(images_dir);
  tr.lazy_parent_pages = parent_pages;
  struct stat st {};
  if (any && (::stat(tr.lazy_socket.c_str(), &st) < 0 || !S_ISSOCK(st.st_mode))) {
    return MakeError(ErrorKind::kInvalidArg,
                     "--lazy-pages: no lazy-pages daemon at {} (start `cryo lazy-pages -D {}` "
                     "first)",
                     tr.lazy_socket, images_dir);
  }
  return any;
}

}  // namespace

Result<RestoreResult> Restore(const RestoreOptions& opts) {
  auto t0 = Clock::now();
  auto dir = CRYO_TRY(image::ImageDir::Open(opts.images_dir));
  model::ProcessTree tree = CRYO_TRY(image::ReadTree(dir));
  image::Inventory inv = CRYO_TRY(image::ReadInventory(dir));
  for (const model::Process& p : tree.processes) {
    if (!opts.lazy_pages && std::any_of(p.pagemap.begin(), p.pagemap.end(), IsRemoteRun)) {
      return MakeError(ErrorKind::kInvalidArg,
                       "pid {}: the image is a post-copy dump whose pages are on its source: "
                       "restore with --lazy-pages, `cryo lazy-pages --page-server` serving them",
                       p.pid);
    }
  }
  std::vector<std::optional<image::PageChain>> chains(tree.processes.size());
  for (size_t i = 0; i < tree.processes.size(); i++) {
    const model::Process& p = tree.processes[i];
    if (p.zombie) continue;
    CRYO_TRYV(CheckRestorable(p));
    CRYO_TRYV(CheckInetRestorable(p, opts.tcp_established));
    CRYO_TRYV(CheckShellJob(p, opts.shell_job));  // restore/fd_tty.h
    chains[i].emplace(CRYO_TRY(image::PageChain::Open(dir, inv, p.pid)));
  }
  auto t_wait = Clock::now();
  for (const model::Process& p : tree.processes) {
    for (const model::Thread& t : p.threads) CRYO_TRYV(WaitPidFree(t.tid, opts.pid_wait_seconds));
  }
  for (pid_t g : HelperGroups(tree)) CRYO_TRYV(WaitPidFree(g, opts.pid_wait_seconds));
  auto t_plan = Clock::now();
  double pid_wait = std::chrono::duration<double>(t_plan - t_wait).count();

  auto error = CRYO_TRY(MakePipe());
  if (::fcntl(error.read.get(), F_SETFL, O_NONBLOCK) < 0) return ErrnoError("error pipe");
  TreeRestore tr;
  tr.tree = &tree;
  tr.dir_fd = dir.fd();
  tr.error_fd = error.write.get();
  std::vector<UniqueFd> shared_files;
  CRYO_TRYV(PrepareTree(tr, shared_files));
  // Shared memory: created once, before any process, which all inherit it (and before the plans,
  // which then keep clear of whatever it maps here).
  auto shmem = CRYO_TRY(ShmemObjects::Create(tree.shmem, dir.fd()));
  tr.shmem = &shmem;
  CRYO_TRYV(PlanTree(tr, chains));
  bool handed_over = false;
  if (opts.lazy_pages) {
    handed_over = CRYO_TRY(PrepareLazy(tr, opts.images_dir, opts.lazy_parent_pages));
  }

  const model::Process& root = tree.processes.front();
  auto t_tree = Clock::now();
  log::Debug("restore: creating the tree");
  pid_t pid = CRYO_TRY_CTX(sys::Clone3WithTid(root.pid, 0), "create pid {}", root.pid);
  if (pid == 0) RunTreeChild(tr, 0);  // never returns
  shared_files.clear();               // the tree holds them now
  error.write.Reset();
  CRYO_TRYV(DriveTree(tr, error.read.get()));
  CRYO_TRYV(shmem.Commit());
  log::Debug("restore: the tree runs");
  if (handed_over) {
    // Only a slower start if this fails: the daemon begins its fill on its own after a while.
    // A daemon already gone has delivered everything on faults (or failed, and then it has
    // killed the processes it served).
    if (auto s = TellDaemonRunning(tr.lazy_socket, pid); !s) {
      bool gone = s.error().sys_errno() == ENOENT || s.error().sys_errno() == ECONNREFUSED;
      if (gone) {
        log::Debug("lazy-pages daemon gone before the running notice: {}", s.error().Message());
      } else {
        log::Warn("{}", s.error().Message());
      }
    }
  }
  ::munmap(tr.control, tr.control_bytes);
  log::Debug("restore: done");

  RestoreResult result;
  result.pid = pid;
  result.pid_wait_seconds = pid_wait;
  result.read_seconds = std::chrono::duration<double>(t_wait - t0).count();
  result.plan_seconds = std::chrono::duration<double>(t_tree - t_plan).count();
  result.tree_seconds = std::chrono::duration<double>(Clock::now() - t_tree).count();
  result.restore_seconds = std::chrono::duration<double>(Clock::now() - t0).count() - pid_wait;
  if (auto s = WriteStats(dir.path(), result, tree); !s) log::Warn("{}", s.error().Message());
  log::Info("pid {} restored with {} processes in {:.3f} s", pid, tree.processes.size(),
            result.restore_seconds);
  if (opts.detach) return result;

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("wait for restored pid {}", pid);
  }
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace cryo::restore
