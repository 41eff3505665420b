// core-<pid>.img ⇄ a process's identity, credentials, limits, signal state and threads.
#include <algorithm>

#include "image/codec.h"
#include "image/codec_util.h"
#include "image/cryo.pb.h"
#include "image/format.h"
#include "image/image_file.h"

namespace cryo::image {
namespace {

// Every field of struct user_regs_struct, in order.
// clang-format off
#define CRYO_GP_REGS(X)                                                                   \
  X(r15) X(r14) X(r13) X(r12) X(rbp) X(rbx) X(r11) X(r10) X(r9) X(r8) X(rax) X(rcx)      \
  X(rdx) X(rsi) X(rdi) X(orig_rax) X(rip) X(cs) X(eflags) X(rsp) X(ss) X(fs_base)        \
  X(gs_base) X(ds) X(es) X(fs) X(gs)
// clang-format on

void ToProto(const model::GpRegs& in, pb::GpRegs& out) {
#define CRYO_SET(f) out.set_##f(in.f);
  CRYO_GP_REGS(CRYO_SET)
#undef CRYO_SET
}

model::GpRegs FromProto(const pb::GpRegs& in) {
  model::GpRegs out{};
#define CRYO_GET(f) out.f = in.f();
  CRYO_GP_REGS(CRYO_GET)
#undef CRYO_GET
  return out;
}

std::string SigInfoBytes(const model::SigInfo& s) {
  return std::string(reinterpret_cast<const char*>(s.raw.data()), s.raw.size());
}

Result<model::SigInfo> SigInfoFromBytes(const std::string& bytes, std::string_view what) {
  model::SigInfo s;
  if (bytes.size() != s.raw.size()) {
    return MakeError(ErrorKind::kCorruptImage, "{}: {} bytes, a siginfo_t has {}", what,
                     bytes.size(), s.raw.size());
  }
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(s.raw.data()));
  return s;
}

void ToProto(const model::Thread& in, pb::Thread& out) {
  out.set_tid(in.tid);
  ToProto(in.regs, *out.mutable_regs());
  out.set_xstate(in.xstate);
  out.set_blocked(in.blocked);
  for (const model::SigInfo& s : in.pending) out.add_pending(SigInfoBytes(s));
  pb::AltStack* a = out.mutable_altstack();
  a->set_sp(in.altstack.sp);
  a->set_flags(in.altstack.flags);
  a->set_size(in.altstack.size);
  out.set_rseq(in.rseq);
  out.set_rseq_len(in.rseq_len);
  out.set_rseq_sig(in.rseq_sig);
  out.set_robust_list(in.robust_list);
  out.set_robust_list_len(in.robust_list_len);
  out.set_clear_child_tid(in.clear_child_tid);
  out.set_comm(in.comm);
}

Result<model::Thread> FromProto(const pb::Thread& in) {
  model::Thread t;
  t.tid = in.tid();
  if (!in.has_regs()) {
    return MakeError(ErrorKind::kCorruptImage, "thread {} has no registers", t.tid);
  }
  t.regs = FromProto(in.regs());
  t.xstate = in.xstate();
  t.blocked = in.blocked();
  t.pending.reserve(in.pending_size());
  for (const std::string& s : in.pending()) {
    t.pending.push_back(CRYO_TRY(SigInfoFromBytes(s, fmt::format("thread {}: pending", t.tid))));
  }
  t.altstack = {
      .sp = in.altstack().sp(), .flags = in.altstack().flags(), .size = in.altstack().size()};
  t.rseq = in.rseq();
  t.rseq_len = in.rseq_len();
  t.rseq_sig = in.rseq_sig();
  t.robust_list = in.robust_list();
  t.robust_list_len = in.robust_list_len();
  t.clear_child_tid = in.clear_child_tid();
  t.comm = in.comm();
  return t;
}

void ToProto(const model::Creds& in, pb::Creds& out) {
  for (uint32_t id : in.uids) out.add_uids(id);
  for (uint32_t id : in.gids) out.add_gids(id);
  for (uint32_t g : in.groups) out.add_groups(g);
  out.set_cap_inh(in.cap_inh);
  out.set_cap_prm(in.cap_prm);
  out.set_cap_eff(in.cap_eff);
  out.set_cap_bnd(in.cap_bnd);
  out.set_cap_amb(in.cap_amb);
}

Result<model::Creds> FromProto(const pb::Creds& in) {
  model::Creds c;
  if (in.uids_size() != int(c.uids.size()) || in.gids_size() != int(c.gids.size())) {
    return MakeError(ErrorKind::kCorruptImage, "creds: {} uids and {} gids, expected {} of each",
                     in.uids_size(), in.gids_size(), c.uids.size());
  }
  std::copy(in.uids().begin(), in.uids().end(), c.uids.begin());
  std::copy(in.gids().begin(), in.gids().end(), c.gids.begin());
  c.groups.assign(in.groups().begin(), in.groups().end());
  c.cap_inh = in.cap_inh();
  c.cap_prm = in.cap_prm();
  c.cap_eff = in.cap_eff();
  c.cap_bnd = in.cap_bnd();
  c.cap_amb = in.cap_amb();
  return c;
}

}  // namespace

Result<std::string> EncodeCore(const model::Process& p) {
  pb::Core m;
  m.set_pid(p.pid);
  m.set_comm(p.comm);
  m.set_stopped(p.stopped);
  m.set_no_new_privs(p.no_new_privs);
  m.set_child_subreaper(p.child_subreaper);
  m.set_personality(p.personality);
  m.set_dumpable(p.dumpable);
  m.set_umask(p.umask);
  m.set_cwd(p.cwd);
  m.set_root(p.root);
  ToProto(p.creds, *m.mutable_creds());
  for (const model::Rlimit& r : p.rlimits) {
    pb::Rlimit* out = m.add_rlimits();
    out->set_cur(r.cur);
    out->set_max(r.max);
  }
  for (const model::SigAction& a : p.sigactions) {
    pb::SigAction* out = m.add_sigactions();
    out->set_handler(a.handler);
    out->set_flags(a.flags);
    out->set_restorer(a.restorer);
    out->set_mask(a.mask);
  }
  for (const model::SigInfo& s : p.shared_pending) m.add_shared_pending(SigInfoBytes(s));
  for (const model::Thread& t : p.threads) ToProto(t, *m.add_threads());
  return EncodeFile(Kind::kCore, m);
}

Status DecodeCore(std::string_view file, model::Process& p) {
  pb::Core m;
  CRYO_TRYV(DecodeFile(file, Kind::kCore, m));
  CRYO_TRYV(CheckPid(m.pid(), p.pid));
  p.comm = m.comm();
  p.stopped = m.stopped();
  p.no_new_privs = m.no_new_privs();
  p.child_subreaper = m.child_subreaper();
  p.personality = m.personality();
  p.dumpable = m.dumpable();
  p.umask = m.umask();
  p.cwd = m.cwd();
  p.root = m.root();
  if (!m.has_creds()) return MakeError(ErrorKind::kCorruptImage, "no credentials");
  p.creds = CRYO_TRY(FromProto(m.creds()));
  p.rlimits.clear();
  for (const pb::Rlimit& r : m.rlimits()) p.rlimits.push_back({.cur = r.cur(), .max = r.max()});
  p.sigactions.clear();
  for (const pb::SigAction& a : m.sigactions()) {
    p.sigactions.push_back(
        {.handler = a.handler(), .flags = a.flags(), .restorer = a.restorer(), .mask = a.mask()});
  }
  p.shared_pending.clear();
  for (const std::string& s : m.shared_pending()) {
    p.shared_pending.push_back(CRYO_TRY(SigInfoFromBytes(s, "shared pending signal")));
  }
  p.threads.clear();
  p.threads.reserve(m.threads_size());
  for (const pb::Thread& t : m.threads()) p.threads.push_back(CRYO_TRY(FromProto(t)));
  return {};
}

}  // namespace cryo::image
