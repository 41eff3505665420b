// Credentials, applied last by the blob: groups, gids, bounding set, uids, capabilities, ambient
// set. Every step first reads the current value and is skipped when it already matches, so a
// root target restored by root cryo makes no changing call at all.
//
// Order matters because each change can take away the privilege the next one needs:
//   - gids and fsgid go first, while CAP_SETGID is still effective;
//   - the inheritable set is raised before the bounding set shrinks (capset may only add
//     inheritable bits that are in the bounding set), and the bounding set is dropped while
//     CAP_SETPCAP is still effective;
//   - setresuid away from root clears the effective set (and, without PR_SET_KEEPCAPS, the
//     permitted set too); the effective set is raised back to the permitted one so that
//     setfsuid may pick any fsuid, and the final capset fixes eff/prm/inh exactly, after the
//     fsuid change (which edits the effective set as a side effect).
#include <linux/capability.h>
#include <linux/prctl.h>

#include "restorer/abi.h"
#include "restorer/blob/outcome.h"
#include "restorer/blob/syscall.h"

namespace cryo::restorer::blob {
namespace {

constexpr long kEperm = -1;
constexpr long kEinval = -22;
constexpr uint32_t kGroupsCompared = 64;  // more than that: set them without comparing

struct CapSets {
  uint64_t eff, prm, inh;
  bool operator==(const CapSets&) const = default;
};

long CapGet(CapSets* out) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  long r = Syscall(__NR_capget, Arg(&header), Arg(data));
  if (IsError(r)) return r;
  out->eff = data[0].effective | static_cast<uint64_t>(data[1].effective) << 32;
  out->prm = data[0].permitted | static_cast<uint64_t>(data[1].permitted) << 32;
  out->inh = data[0].inheritable | static_cast<uint64_t>(data[1].inheritable) << 32;
  return 0;
}

long CapSet(const CapSets& s) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2];
  data[0].effective = static_cast<uint32_t>(s.eff);
  data[1].effective = static_cast<uint32_t>(s.eff >> 32);
  data[0].permitted = static_cast<uint32_t>(s.prm);
  data[1].permitted = static_cast<uint32_t>(s.prm >> 32);
  data[0].inheritable = static_cast<uint32_t>(s.inh);
  data[1].inheritable = static_cast<uint32_t>(s.inh >> 32);
  return Syscall(__NR_capset, Arg(&header), Arg(data));
}

Outcome SetGroups(const Arena& a) {
  const uint32_t* want = ArenaArray<uint32_t>(a, a.groups_offset);
  uint32_t cur[kGroupsCompared];
  long n = Syscall(__NR_getgroups, kGroupsCompared, Arg(cur));  // EINVAL if there are more
  bool same = !IsError(n) && static_cast<uint64_t>(n) == a.group_count;
  for (uint32_t i = 0; same && i < a.group_count; ++i) same = cur[i] == want[i];
  if (same) return {};
  long r = Syscall(__NR_setgroups, a.group_count, Arg(want));
  if (IsError(r)) return Fail(kCreds, r, kCredGroups);
  return {};
}

// setfsuid/setfsgid return the previous value and never an error; (uint32_t)-1 is invalid and
// only reads. A refused change is seen by reading back.
Outcome SetFsId(long nr, uint32_t want, CredStep step) {
  if (static_cast<uint32_t>(Syscall(nr, -1)) == want) return {};
  Syscall(nr, want);
  if (static_cast<uint32_t>(Syscall(nr, -1)) != want) return Fail(kCreds, kEperm, step);
  return {};
}

Outcome SetGids(const Arena& a) {
  uint32_t r = 0, e = 0, s = 0;
  long ret = Syscall(__NR_getresgid, Arg(&r), Arg(&e), Arg(&s));
  if (IsError(ret)) return Fail(kCreds, ret, kCredGid);
  if (r != a.gids[0] || e != a.gids[1] || s != a.gids[2]) {
    ret = Syscall(__NR_setresgid, a.gids[0], a.gids[1], a.gids[2]);
    if (IsError(ret)) return Fail(kCreds, ret, kCredGid);
  }
  return SetFsId(__NR_setfsgid, a.gids[3], kCredFsGid);
}

Outcome SetInheritable(const Arena& a) {
  CapSets cur;
  long r = CapGet(&cur);
  if (IsError(r)) return Fail(kCreds, r, kCredInheritable);
  if (cur.inh == a.cap_inh) return {};
  r = CapSet(CapSets{cur.eff, cur.prm, a.cap_inh});
  if (IsError(r)) return Fail(kCreds, r, kCredInheritable);
  return {};
}

Outcome DropBounding(const Arena& a) {
  for (uint32_t cap = 0; cap <= a.cap_last; ++cap) {
    if (a.cap_bnd & (1ull << cap)) continue;
    long r = Syscall(__NR_prctl, PR_CAPBSET_READ, cap);
    if (IsError(r)) return Fail(kCreds, r, kCredBounding, cap);
    if (r == 0) continue;
    r = Syscall(__NR_prctl, PR_CAPBSET_DROP, cap);
    if (IsError(r)) return Fail(kCreds, r, kCredBounding, cap);
  }
  return {};
}

// Sets r/e/s uids; PR_SET_KEEPCAPS keeps the permitted set across leaving uid 0. Leaves the
// effective set equal to the permitted one so that setfsuid and capset that follow may act.
Outcome SetUids(const Arena& a) {
  uint32_t r = 0, e = 0, s = 0;
  long ret = Syscall(__NR_getresuid, Arg(&r), Arg(&e), Arg(&s));
  if (IsError(ret)) return Fail(kCreds, ret, kCredUid);
  if (r == a.uids[0] && e == a.uids[1] && s == a.uids[2]) return {};
  ret = Syscall(__NR_prctl, PR_SET_KEEPCAPS, 1);
  if (IsError(ret)) return Fail(kCreds, ret, kCredKeepCaps);
  ret = Syscall(__NR_setresuid, a.uids[0], a.uids[1], a.uids[2]);
  if (IsError(ret)) return Fail(kCreds, ret, kCredUid);
  ret = Syscall(__NR_prctl, PR_SET_KEEPCAPS, 0);
  if (IsError(ret)) return Fail(kCreds, ret, kCredKeepCaps);
  CapSets cur;
  ret = CapGet(&cur);
  if (IsError(ret)) return Fail(kCreds, ret, kCredCaps);
  if (cur.eff != cur.prm) {
    ret = CapSet(CapSets{cur.prm, cur.prm, cur.inh});
    if (IsError(ret)) return Fail(kCreds, ret, kCredCaps);
  }
  return {};
}

Outcome SetCaps(const Arena& a) {
  CapSets cur;
  long r = CapGet(&cur);
  if (IsError(r)) return Fail(kCreds, r, kCredCaps);
  const CapSets want{a.cap_eff, a.cap_prm, a.cap_inh};
  if (cur == want) return {};
  r = CapSet(want);
  if (IsError(r)) return Fail(kCreds, r, kCredCaps);
  return {};
}

// Ambient caps need the cap in both permitted and inheritable, so this runs after SetCaps.
Outcome SetAmbient(const Arena& a) {
  for (uint32_t cap = 0; cap <= a.cap_last; ++cap) {
    const bool want = (a.cap_amb >> cap) & 1;
    long r = Syscall(__NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
    if (IsError(r)) {
      // A kernel without ambient caps (EINVAL) is fine when none are wanted.
      if (r == kEinval && a.cap_amb == 0) return {};
      return Fail(kCreds, r, kCredAmbient, cap);
    }
    if ((r == 1) == want) continue;
    r = Syscall(__NR_prctl, PR_CAP_AMBIENT, want ? PR_CAP_AMBIENT_RAISE : PR_CAP_AMBIENT_LOWER, cap,
                0, 0);
    if (IsError(r)) return Fail(kCreds, r, kCredAmbient, cap);
  }
  return {};
}

// Credential changes make the task non-dumpable; the target was dumpable (we dumped it).
Outcome SetDumpable() {
  long r = Syscall(__NR_prctl, PR_GET_DUMPABLE);
  if (r == 1) return {};
  r = Syscall(__NR_prctl, PR_SET_DUMPABLE, 1);
  if (IsError(r)) return Fail(kCreds, r, kCredDumpable);
  return {};
}

}  // namespace

Outcome ApplyCreds(const Arena& a) {
  if (Outcome o = SetGroups(a); !o.ok()) return o;
  if (Outcome o = SetGids(a); !o.ok()) return o;
  if (Outcome o = SetInheritable(a); !o.ok()) return o;
  if (Outcome o = DropBounding(a); !o.ok()) return o;
  if (Outcome o = SetUids(a); !o.ok()) return o;
  if (Outcome o = SetFsId(__NR_setfsuid, a.uids[3], kCredFsUid); !o.ok()) return o;
  if (Outcome o = SetCaps(a); !o.ok()) return o;
  if (Outcome o = SetAmbient(a); !o.ok()) return o;
  return SetDumpable();
}

}  // namespace cryo::restorer::blob
