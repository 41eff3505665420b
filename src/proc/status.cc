#include "proc/status.h"

#include <limits>

#include "proc/text.h"

namespace cryo::proc {
namespace {

// proc_task_name() escapes only '\n' (as "\n") and '\\' (as "\\") in the Name line.
std::string UnescapeName(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size() && (raw[i + 1] == 'n' || raw[i + 1] == '\\')) {
      out.push_back(raw[i + 1] == 'n' ? '\n' : '\\');
      ++i;
    } else {
      out.push_back(raw[i]);
    }
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view s, int base, T* out) {
  auto v = ParseUint(TrimSpace(s), base);
  if (!v || *v > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
  *out = static_cast<T>(*v);
  return true;
}

template <typename T>
bool ParseList(std::string_view s, std::vector<T>* out) {
  out->clear();
  for (std::string_view t = NextToken(&s); !t.empty(); t = NextToken(&s)) {
    T v{};
    if (!ParseNumber(t, 10, &v)) return false;
    out->push_back(v);
  }
  return true;
}

bool ParseIds(std::string_view s, std::array<uint32_t, 4>* out) {
  std::vector<uint32_t> ids;
  if (!ParseList(s, &ids) || ids.size() != out->size()) return false;
  std::copy(ids.begin(), ids.end(), out->begin());
  return true;
}

enum Required : unsigned {
  kName = 1u << 0,
  kState = 1u << 1,
  kTgid = 1u << 2,
  kPid = 1u << 3,
  kPPid = 1u << 4,
  kUid = 1u << 5,
  kGid = 1u << 6,
  kAllRequired = (1u << 7) - 1,
};

bool Mark(unsigned* seen, unsigned bit) {
  *seen |= bit;
  return true;
}

// Parses one "Key:\tvalue" line into `st`. Returns false when a field we read is malformed.
bool ParseField(std::string_view key, std::string_view value, ProcStatus* st, unsigned* seen) {
  if (key == "Name") {
    // The name is everything after "Name:\t", blanks included.
    if (value.starts_with('\t')) value.remove_prefix(1);
    st->name = UnescapeName(value);
    *seen |= kName;
    return true;
  }
  value = TrimSpace(value);
  if (key == "State") {
    if (value.empty()) return false;
    st->state = value.front();
    *seen |= kState;
    return true;
  }
  if (key == "Umask") return st->has_umask = ParseNumber(value, 8, &st->umask);
  if (key == "Tgid") return Mark(seen, kTgid) && ParseNumber(value, 10, &st->tgid);
  if (key == "Pid") return Mark(seen, kPid) && ParseNumber(value, 10, &st->pid);
  if (key == "PPid") return Mark(seen, kPPid) && ParseNumber(value, 10, &st->ppid);
  if (key == "TracerPid") return ParseNumber(value, 10, &st->tracer_pid);
  if (key == "Uid") return Mark(seen, kUid) && ParseIds(value, &st->uids);
  if (key == "Gid") return Mark(seen, kGid) && ParseIds(value, &st->gids);
  if (key == "Groups") return ParseList(value, &st->groups);
  if (key == "NSpid") return ParseList(value, &st->nspid) && !st->nspid.empty();
  if (key == "Threads") return ParseNumber(value, 10, &st->threads);
  if (key == "SigPnd") return ParseNumber(value, 16, &st->sig_pnd);
  if (key == "ShdPnd") return ParseNumber(value, 16, &st->shd_pnd);
  if (key == "SigBlk") return ParseNumber(value, 16, &st->sig_blk);
  if (key == "SigIgn") return ParseNumber(value, 16, &st->sig_ign);
  if (key == "SigCgt") return ParseNumber(value, 16, &st->sig_cgt);
  if (key == "CapInh") return ParseNumber(value, 16, &st->cap_inh);
  if (key == "CapPrm") return ParseNumber(value, 16, &st->cap_prm);
  if (key == "CapEff") return ParseNumber(value, 16, &st->cap_eff);
  if (key == "CapBnd") return ParseNumber(value, 16, &st->cap_bnd);
  if (key == "CapAmb") return ParseNumber(value, 16, &st->cap_amb);
  if (key == "NoNewPrivs") return ParseNumber(value, 10, &st->no_new_privs);
  if (key == "Seccomp") return ParseNumber(value, 10, &st->seccomp);
  return true;
}

}  // namespace

Result<ProcStatus> ParseStatus(std::string_view text) {
  ProcStatus st;
  unsigned seen = 0;
  LineReader lines(text);
  std::string_view line;
  while (lines.Next(&line)) {
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return BadLine("status", lines.line_number(), "no colon", line);
    }
    if (!ParseField(line.substr(0, colon), line.substr(colon + 1), &st, &seen)) {
      return BadLine("status", lines.line_number(), "bad value", line);
    }
  }
  if (seen != kAllRequired) {
    return MakeError(ErrorKind::kInternal,
                     "status: missing a required field (Name, State, Tgid, Pid, PPid, Uid, Gid)");
  }
  return st;
}

}  // namespace cryo::proc
