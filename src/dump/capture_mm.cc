#include "dump/capture_mm.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>

#include "base/hash.h"
#include "base/io.h"
#include "dump/capture_shmem.h"
#include "proc/smaps.h"
#include "proc/stat.h"
#include "proc/tasks.h"
#include "sys/syscalls.h"

namespace cryo::dump {
namespace {

constexpr uint64_t kUserTop = 0x800000000000ull;

uint32_t VmaFlagsFrom(const std::vector<std::string>& codes) {
  uint32_t f = 0;
  for (const auto& c : codes) {
    if (c == "gd")
      f |= model::kVmaGrowsDown;
    else if (c == "dc")
      f |= model::kVmaDontFork;
    else if (c == "dd")
      f |= model::kVmaDontDump;
    else if (c == "wf")
      f |= model::kVmaWipeOnFork;
    else if (c == "hg")
      f |= model::kVmaHugePage;
    else if (c == "nh")
      f |= model::kVmaNoHugePage;
    else if (c == "mg")
      f |= model::kVmaMergeable;
    else if (c == "lo")
      f |= model::kVmaLocked;
    else if (c == "um" || c == "uw" || c == "ui")
      f |= model::kVmaUffdRegistered;
  }
  return f;
}

bool HasCode(const std::vector<std::string>& codes, const char* code) {
  for (const auto& c : codes) {
    if (c == code) return true;
  }
  return false;
}

Result<model::FileId> StatMapFile(pid_t pid, const proc::MapsEntry& m) {
  // map_files reaches the mapped file itself, even if its path was renamed meanwhile.
  std::string link = fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, m.start, m.end);
  struct stat st {};
  if (::stat(link.c_str(), &st) < 0) return ErrnoError("stat {}", link);
  return model::FileIdOf(st);
}

bool OverlapsAny(std::span<const mem::PageRange> ranges, uint64_t start, uint64_t end) {
  for (const auto& r : ranges) {
    if (r.start < end && start < r.end) return true;
  }
  return false;
}

// Whose userfaultfd (if any) a mapping is registered with. Ours is WP-only ("uw") and overlaps
// a range our tracker registered; a vma has one uffd context, so anything else is the process's.
UffdOwner OwnerOf(const proc::SmapsEntry& e, const MmCaptureOptions& o) {
  bool wp = HasCode(e.vm_flags, "uw");
  bool other = HasCode(e.vm_flags, "um") || HasCode(e.vm_flags, "ui");
  if (!wp && !other) return UffdOwner::kNone;
  if (wp && !other && OverlapsAny(o.tracked, e.map.start, e.map.end)) return UffdOwner::kOurs;
  return UffdOwner::kProcess;
}

Result<model::Vma> VmaFrom(pid_t pid, const proc::SmapsEntry& e, UffdOwner owner,
                           const MmCaptureOptions& o) {
  const proc::MapsEntry& m = e.map;
  model::Vma v;
  v.start = m.start;
  v.end = m.end;
  v.prot = (m.read ? PROT_READ : 0) | (m.write ? PROT_WRITE : 0) | (m.exec ? PROT_EXEC : 0);
  v.flags = VmaFlagsFrom(e.vm_flags);
  v.pgoff = m.offset;
  v.name = m.path;
  auto where = [&] { return fmt::format("mapping {:#x}-{:#x} {}", m.start, m.end, m.path); };
  bool special = m.path == "[vdso]" || m.path == "[vvar]" || m.path == "[vvar_vclock]";
  if (!special && (HasCode(e.vm_flags, "io") || HasCode(e.vm_flags, "pf"))) {
    return MakeError(ErrorKind::kUnsupported, "{}: device (I/O or PFN) mappings are not supported",
                     where());
  }
  if (m.path == "[vdso]") {
    v.kind = model::VmaKind::kVdso;
  } else if (m.path == "[vvar]" || m.path == "[vvar_vclock]") {
    v.kind = model::VmaKind::kVvar;
  } else if (IsShmemMapping(m)) {
    v.name = m.path;
    if (o.shmem == nullptr) {
      SetShmemVmaKind(m, v);
    } else {
      CRYO_TRYV(o.shmem->AddMapping(pid, m, v));
    }
  } else if (m.inode == 0) {
    if (m.shared) {
      return MakeError(ErrorKind::kUnsupported, "{}: shared anonymous memory is not supported yet",
                       where());
    }
    v.kind = model::VmaKind::kAnonPrivate;
  } else {
    auto refuse = [&](std::string_view what) {
      return MakeError(ErrorKind::kUnsupported, "{}: {} is not supported yet", where(), what);
    };
    // Shared anonymous memory, memfds, System V and unlinked files are IsShmemMapping.
    if (m.path.starts_with("/dev/zero")) return refuse("a private mapping of /dev/zero");
    if (m.path.empty() || m.path[0] != '/') return refuse("a mapping without a file path");
    v.kind = m.shared ? model::VmaKind::kFileShared : model::VmaKind::kFilePrivate;
    v.file = CRYO_TRY(StatMapFile(pid, m));
  }
  if (owner == UffdOwner::kOurs) v.flags &= ~model::kVmaUffdRegistered;
  if (owner == UffdOwner::kProcess && !o.allow_process_uffd) {
    return MakeError(ErrorKind::kUnsupported, "{}: registered with userfaultfd by the process",
                     where());
  }
  if (owner == UffdOwner::kProcess) {
    // Registered again with the process's userfaultfd at restore (dump/fd_userfaultfd.cc).
    if (HasCode(e.vm_flags, "um")) v.flags |= model::kVmaUffdMissing;
    if (HasCode(e.vm_flags, "uw")) v.flags |= model::kVmaUffdWp;
    if (HasCode(e.vm_flags, "ui")) v.flags |= model::kVmaUffdMinor;
  }
  return v;
}

Result<std::vector<uint64_t>> ReadAuxv(pid_t pid) {
  std::string raw = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/auxv", pid)));
  std::vector<uint64_t> words(raw.size() / 8);
  std::memcpy(words.data(), raw.data(), words.size() * 8);
  // Keep up to and including the AT_NULL pair.
  for (size_t i = 0; i + 1 < words.size(); i += 2) {
    if (words[i] == 0) {
      words.resize(i + 2);
      break;
    }
  }
  return words;
}

// The vdso text is the running kernel's; restore compares it with its own.
Result<uint64_t> HashVdso(pid_t pid, const model::Vma& v) {
  std::vector<uint8_t> text(v.length());
  auto n = sys::ProcessVmRead(pid, RemoteAddr(v.start), std::as_writable_bytes(std::span(text)));
  if (!n) return Wrapped(std::move(n).error(), "read [vdso]");
  if (*n != text.size()) return MakeError(ErrorKind::kInternal, "short read of [vdso]");
  return Fnv1a64(text);
}

}  // namespace

Status CaptureMm(pid_t pid, model::Process& p, const MmCaptureOptions& o,
                 std::vector<UffdOwner>* owners) {
  std::string smaps = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/smaps", pid)));
  auto entries = CRYO_TRY_CTX(proc::ParseSmaps(smaps), "smaps of pid {}", pid);
  for (const auto& e : entries) {
    if (e.map.start >= kUserTop) continue;  // [vsyscall] is not a real mapping
    UffdOwner owner = OwnerOf(e, o);
    p.vmas.push_back(CRYO_TRY_CTX(VmaFrom(pid, e, owner, o), "pid {}", pid));
    if (owners != nullptr) owners->push_back(owner);
    if (p.vmas.back().kind == model::VmaKind::kVdso) {
      p.mm.vdso_hash = CRYO_TRY_CTX(HashVdso(pid, p.vmas.back()), "pid {}", pid);
    }
  }

  auto st = CRYO_TRY(proc::ReadStat(pid));
  p.mm.start_code = st.start_code;
  p.mm.end_code = st.end_code;
  p.mm.start_data = st.start_data;
  p.mm.end_data = st.end_data;
  p.mm.start_brk = st.start_brk;
  p.mm.start_stack = st.start_stack;
  p.mm.arg_start = st.arg_start;
  p.mm.arg_end = st.arg_end;
  p.mm.env_start = st.env_start;
  p.mm.env_end = st.env_end;
  p.mm.auxv = CRYO_TRY(ReadAuxv(pid));
  std::string exe_link = fmt::format("/proc/{}/exe", pid);
  p.mm.exe_path = CRYO_TRY(proc::ReadLink(exe_link));
  struct stat est {};
  if (::stat(exe_link.c_str(), &est) < 0) return ErrnoError("stat {}", exe_link);
  p.mm.exe_file = model::FileIdOf(est);
  return {};
}

}  // namespace cryo::dump
