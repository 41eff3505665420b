#include "dump/tree.h"

#include <signal.h>

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include "base/io.h"
#include "base/log.h"
#include "dump/capture_seccomp.h"
#include "dump/shape.h"
#include "proc/tasks.h"

namespace cryo::dump {
namespace {

// The pids listed in /proc/PID/task/TID/children of every thread of a frozen process.
std::vector<pid_t> ChildrenOf(const ptrace::Freezer& frozen) {
  std::vector<pid_t> out;
  for (const ptrace::Tracee& t : frozen.threads()) {
    auto text = ReadWholeFile(fmt::format("/proc/{}/task/{}/children", frozen.pid(), t.tid()));
    if (!text) continue;
    std::string_view rest = *text;
    while (!rest.empty()) {
      size_t sp = rest.find_first_of(" \n");
      std::string_view tok = rest.substr(0, sp);
      rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
      pid_t pid = 0;
      if (!tok.empty() &&
          std::from_chars(tok.data(), tok.data() + tok.size(), pid).ec == std::errc{})
        out.push_back(pid);
    }
  }
  return out;
}

}  // namespace

Result<ptrace::Freezer> FreezeForDump(pid_t pid, bool stopped) {
  // A job-control stopped process would fall back into its group stop in the middle of our
  // remote syscalls: it is continued first (before seizing, so no SIGCONT is queued for a
  // default action) and stopped again whenever it is released.
  if (stopped && ::kill(pid, SIGCONT) < 0) return ErrnoError("continue stopped pid {}", pid);
  auto frozen = ptrace::Freezer::FreezeProcess(pid);
  if (!frozen) {
    if (stopped) ::kill(pid, SIGSTOP);
    return std::unexpected(std::move(frozen).error());
  }
  if (stopped) frozen->RestopOnRelease();
  log::Info("pid {} frozen", pid);
  CRYO_TRYV(SuspendSeccomp(*frozen));  // before any remote syscall
  CRYO_TRYV(CheckSupportedShape(pid, /*allow_children=*/true));
  return std::move(*frozen);
}

model::Process ZombieProcess(const TreeMember& m) {
  model::Process p;
  p.pid = m.pid;
  p.ppid = m.ppid;
  p.pgid = m.pgid;
  p.sid = m.sid;
  p.zombie = true;
  p.exit_status = m.exit_status;
  p.threads.emplace_back().tid = m.pid;
  return p;
}

Status FrozenTree::AddChildren(size_t parent, bool& changed) {
  const pid_t ppid = members_[parent].pid;
  for (pid_t child : ChildrenOf(*members_[parent].frozen)) {
    bool known = std::any_of(members_.begin(), members_.end(),
                             [&](const TreeMember& m) { return m.pid == child; });
    if (known) continue;
    changed = true;
    auto st = proc::ReadStat(child);
    if (!st && st.error().kind() == ErrorKind::kTraceeGone) continue;  // reaped meanwhile
    if (!st) return Wrapped(std::move(st).error(), fmt::format("child {} of pid {}", child, ppid));
    TreeMember m;
    m.pid = child;
    m.ppid = ppid;
    m.pgid = st->pgrp;
    m.sid = st->session;
    if (st->state == 'Z' || st->state == 'X') {
      // A leader thread that exited while other threads run shows as a zombie too.
      auto tasks = proc::ListTasks(child);
      if (tasks && tasks->size() > 1) {
        return MakeError(ErrorKind::kUnsupported,
                         "pid {}: its main thread exited while {} other threads run; not supported",
                         child, tasks->size() - 1);
      }
      m.zombie = true;
      m.exit_status = st->exit_code;
      members_.push_back(std::move(m));
      continue;
    }
    auto shape = CheckSupportedShape(child, /*allow_children=*/true);
    if (!shape && shape.error().kind() == ErrorKind::kInvalidArg) {
      // It exited or became a zombie since: the next pass sees it as it is.
      auto now = proc::ReadStat(child);
      if (!now || now->state == 'Z' || now->state == 'X') continue;
    }
    if (!shape) return std::unexpected(std::move(shape).error());
    m.stopped = shape->state == 'T';
    auto frozen = FreezeForDump(child, m.stopped);
    if (!frozen) {
      // It exited meanwhile (seizing a task that is exiting fails with EPERM): the next pass
      // sees it as a zombie, or not at all.
      auto now = proc::ReadStat(child);
      if (!now || now->state == 'Z' || now->state == 'X') continue;
      return std::unexpected(std::move(frozen).error());
    }
    m.frozen.emplace(std::move(*frozen));
    // Read again now that it cannot change: its group or session may have moved meanwhile.
    if (auto again = proc::ReadStat(child)) {
      m.pgid = again->pgrp;
      m.sid = again->session;
    }
    members_.push_back(std::move(m));
  }
  return {};
}

Result<FrozenTree> FrozenTree::Freeze(pid_t root, bool root_stopped) {
  FrozenTree tree;
  TreeMember r;
  r.pid = root;
  r.stopped = root_stopped;
  r.frozen.emplace(CRYO_TRY(FreezeForDump(root, root_stopped)));
  auto st = CRYO_TRY(proc::ReadStat(root));
  r.ppid = st.ppid;
  r.pgid = st.pgrp;
  r.sid = st.session;
  tree.members_.push_back(std::move(r));
  // A process not frozen yet may fork, and one that exits hands its children to a subreaper
  // (maybe a member): repeat until a pass over every frozen member finds no new child.
  constexpr int kMaxPasses = 100;
  for (int pass = 0; pass < kMaxPasses; pass++) {
    bool changed = false;
    for (size_t i = 0; i < tree.members_.size(); i++) {
      if (tree.members_[i].frozen) CRYO_TRYV(tree.AddChildren(i, changed));
    }
    if (!changed) {
      log::Info("tree of pid {}: {} processes frozen", root, tree.members_.size());
      return tree;
    }
  }
  return MakeError(ErrorKind::kInternal,
                   "freeze tree of pid {}: the set of children did not settle", root);
}

Status FrozenTree::CheckSessionsAndGroups() const {
  return dump::CheckSessionsAndGroups(members_,
                                      [](pid_t pid) { return proc::ReadStat(pid).has_value(); });
}

Status CheckSessionsAndGroups(const std::vector<TreeMember>& members,
                              const std::function<bool(pid_t)>& exists) {
  const TreeMember& root = members.front();
  std::unordered_map<pid_t, const TreeMember*> by_pid;
  for (const TreeMember& m : members) by_pid[m.pid] = &m;
  for (size_t i = 1; i < members.size(); i++) {
    const TreeMember& m = members[i];
    const TreeMember& parent = *by_pid.at(m.ppid);
    // A process gets its parent's session at fork and can only leave it by leading a new one.
    if (m.sid != m.pid && m.sid != parent.sid) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {} is in session {}, which is neither its own nor its parent's "
                       "(pid {}, session {}); not supported",
                       m.pid, m.sid, parent.pid, parent.sid);
    }
    if (m.pgid == m.pid) continue;
    // A group is joined at restore: its leader must be in the tree (a zombie will do) and in the
    // same session, or it is the group of the root's caller, which the root's children inherit.
    auto leader = by_pid.find(m.pgid);
    bool inside = leader != by_pid.end() && leader->second->sid == m.sid;
    bool callers = m.pgid == root.pgid && root.pgid != root.pid && m.sid == root.sid;
    if (inside || callers) continue;
    if (leader != by_pid.end()) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {} is in process group {}, whose leader is in another session", m.pid,
                       m.pgid);
    }
    // A leader that is gone altogether is stood in for by a helper at restore; one that lives
    // outside the tree cannot be.
    if (exists(m.pgid)) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {} is in process group {}, led by pid {} outside the dumped tree; "
                       "not supported",
                       m.pid, m.pgid, m.pgid);
    }
  }
  return {};
}

Status FrozenTree::Kill() {
  Status first;
  for (size_t i = members_.size(); i-- > 0;) {
    if (!members_[i].frozen) continue;
    auto s = members_[i].frozen->Kill();
    if (!s && first) first = std::move(s);
  }
  return first;
}

Status FrozenTree::Release() {
  Status first;
  for (TreeMember& m : members_) {
    if (!m.frozen) continue;
    auto s = m.frozen->Release();
    if (!s && first) first = std::move(s);
  }
  return first;
}

}  // namespace cryo::dump
