#include "restore/plan.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "base/hash.h"
#include "base/io.h"
#include "base/types.h"
#include "proc/maps.h"
#include "restorer/abi.h"
#include "restorer/blob.h"

namespace cryo::restore {
namespace {

constexpr uint64_t kSearchFloor = 1ull << 32;
constexpr uint64_t kSearchCeiling = 0x7f0000000000ull;
constexpr uint64_t kGuard = kPageSize;  // one empty page between premapped areas: no merging

bool NeedsPremap(const model::Vma& v) {
  return v.kind != model::VmaKind::kVdso && v.kind != model::VmaKind::kVvar;
}

Result<model::FileId> StatFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) return ErrnoError("stat {}", path);
  return model::FileIdOf(st);
}

}  // namespace

uint64_t ArenaBytes(const model::Process& p, size_t close_fd_count) {
  size_t thread_signals = 0;
  for (size_t i = 1; i < p.threads.size(); i++) thread_signals += p.threads[i].pending.size();
  return sizeof(restorer::Arena) + p.vmas.size() * sizeof(restorer::VmaMove) +
         p.mm.auxv.size() * 8 + p.creds.groups.size() * 4 + close_fd_count * 4 +
         (p.threads.size() - std::min<size_t>(p.threads.size(), 1)) * sizeof(restorer::ThreadSpec) +
         thread_signals * sizeof(restorer::QueuedSignal) + 64;
}

Result<Plan> MakePlan(const model::Process& p, std::vector<Interval> busy, uint64_t blob_bytes,
                      uint64_t arena_bytes) {
  Plan plan;
  plan.blob_size = PageUp(blob_bytes);
  plan.arena_size = PageUp(arena_bytes);
  uint64_t premap_bytes = 0;
  for (const auto& v : p.vmas) {
    if (NeedsPremap(v)) premap_bytes += v.length() + kGuard;
    busy.push_back({v.start, v.end});
  }
  plan.thread_stacks_bytes =
      p.threads.empty() ? 0 : (p.threads.size() - 1) * restorer::kThreadStackSize;
  uint64_t size = plan.blob_size + kGuard + plan.arena_size + restorer::kBlobStackSize +
                  plan.thread_stacks_bytes + kGuard + premap_bytes;
  std::sort(busy.begin(), busy.end(), [](auto& a, auto& b) { return a.start < b.start; });
  uint64_t cursor = kSearchFloor;
  bool found = false;
  for (const auto& b : busy) {
    if (b.end <= cursor) continue;
    if (b.start >= cursor + size + kGuard) {
      found = true;
      break;
    }
    cursor = std::max(cursor, PageUp(b.end) + kGuard);
  }
  if (!found && cursor + size + kGuard <= kSearchCeiling) found = true;
  if (!found) return MakeError(ErrorKind::kInternal, "no free address range of {} bytes", size);

  plan.keep_start = cursor;
  plan.keep_end = cursor + size;
  plan.blob_addr = cursor;
  plan.arena_addr = plan.blob_addr + plan.blob_size + kGuard;
  plan.stack_top = plan.arena_addr + plan.arena_size + restorer::kBlobStackSize;
  uint64_t at = plan.stack_top + plan.thread_stacks_bytes + kGuard;
  for (size_t i = 0; i < p.vmas.size(); i++) {
    const auto& v = p.vmas[i];
    if (!NeedsPremap(v)) {
      if (plan.vdso_vvar_start == 0 || v.start < plan.vdso_vvar_start) {
        plan.vdso_vvar_start = v.start;
      }
      continue;
    }
    plan.premap.push_back({i, at});
    at += v.length() + kGuard;
  }
  return plan;
}

Status CheckRestorable(const model::Process& p) {
  // The vdso is re-created by the running kernel: its layout must be the one in the image.
  std::string self = CRYO_TRY(ReadWholeFile("/proc/self/maps"));
  auto maps = CRYO_TRY(proc::ParseMaps(self));
  std::vector<std::pair<std::string, uint64_t>> mine, theirs;
  uint64_t my_vdso_hash = 0;
  for (const auto& m : maps) {
    if (m.path == "[vdso]" || m.path == "[vvar]" || m.path == "[vvar_vclock]") {
      mine.emplace_back(m.path, m.end - m.start);
    }
    if (m.path == "[vdso]") {
      my_vdso_hash = Fnv1a64({reinterpret_cast<const uint8_t*>(m.start), m.end - m.start});
    }
  }
  for (const auto& v : p.vmas) {
    if (v.kind == model::VmaKind::kVdso || v.kind == model::VmaKind::kVvar) {
      theirs.emplace_back(v.name, v.length());
    }
  }
  if (!theirs.empty() && mine != theirs) {
    return MakeError(ErrorKind::kUnsupported,
                     "pid {}: the image's vdso layout differs from this kernel's (image taken on "
                     "another kernel?)",
                     p.pid);
  }
  if (p.mm.vdso_hash != 0 && p.mm.vdso_hash != my_vdso_hash) {
    return MakeError(ErrorKind::kUnsupported,
                     "pid {}: the image's vdso code differs from this kernel's (image taken on "
                     "another kernel?); restoring would break its clock and time calls",
                     p.pid);
  }
  for (const auto& v : p.vmas) {
    if (v.kind != model::VmaKind::kFilePrivate && v.kind != model::VmaKind::kFileShared) continue;
    if (v.shmem_id != 0) continue;  // a shared object of the image, not a file by path
    auto now = CRYO_TRY_CTX(StatFile(v.name), "pid {}: mapped file", p.pid);
    if (now != v.file) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {}: mapped file {} changed since the dump (size {} -> {})", p.pid,
                       v.name, v.file.size, now.size);
    }
  }
  auto exe = CRYO_TRY_CTX(StatFile(p.mm.exe_path), "pid {}: executable", p.pid);
  if (exe != p.mm.exe_file) {
    return MakeError(ErrorKind::kUnsupported, "pid {}: executable {} changed since the dump", p.pid,
                     p.mm.exe_path);
  }
  return {};
}

Result<std::vector<Interval>> SelfMappings() {
  std::string self = CRYO_TRY(ReadWholeFile("/proc/self/maps"));
  auto maps = CRYO_TRY(proc::ParseMaps(self));
  std::vector<Interval> out;
  for (const auto& m : maps) out.push_back({m.start, m.end});
  return out;
}

}  // namespace cryo::restore
