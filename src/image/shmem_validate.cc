#include <algorithm>
#include <unordered_map>

#include "base/types.h"
#include "image/format.h"
#include "image/shmem_io.h"
#include "image/validate.h"

namespace cryo::image {
namespace {

template <typename... Args>
std::unexpected<Error> Corrupt(fmt::format_string<Args...> f, Args&&... args) {
  return MakeError(ErrorKind::kCorruptImage, f, std::forward<Args>(args)...);
}

constexpr uint32_t kKnownShmemFlags = model::kShmemSysvRemoved | model::kShmemSysvLocked;

Status CheckObjectFields(const model::ShmemObject& o) {
  using model::ShmemKind;
  if (o.id == 0) return Corrupt("shared object with id 0");
  if (o.size > kMaxShmemSize) {
    return Corrupt("shared object {}: size {} exceeds {}", o.id, o.size, kMaxShmemSize);
  }
  if (o.mode > 0777) return Corrupt("shared object {}: mode {:#o} out of range", o.id, o.mode);
  if (o.flags & ~kKnownShmemFlags) {
    return Corrupt("shared object {}: unknown flags {:#x}", o.id, o.flags);
  }
  if (o.kind != ShmemKind::kSysv && (o.flags != 0 || o.sysv_id != 0 || o.sysv_key != 0)) {
    return Corrupt("shared object {}: System V fields on an object of another kind", o.id);
  }
  if (o.kind != ShmemKind::kMemfd && o.seals != 0) {
    return Corrupt("shared object {}: seals on an object that is no memfd", o.id);
  }
  if (o.seals & ~kKnownSeals)
    return Corrupt("shared object {}: unknown seals {:#x}", o.id, o.seals);
  if (o.name.find('\0') != std::string::npos) {
    return Corrupt("shared object {}: name holds a NUL byte", o.id);
  }
  switch (o.kind) {
    case ShmemKind::kMemfd:
      if (o.name.size() > kMaxMemfdName) {
        return Corrupt("shared object {}: memfd name of {} bytes (at most {})", o.id, o.name.size(),
                       kMaxMemfdName);
      }
      break;
    case ShmemKind::kTmpfs:
      if (o.name.empty() || o.name[0] != '/') {
        return Corrupt("shared object {}: tmpfs path '{}' is not absolute", o.id, o.name);
      }
      break;
    case ShmemKind::kSysv:
      if (o.sysv_id < 0) return Corrupt("shared object {}: System V id {}", o.id, o.sysv_id);
      if (o.size == 0) return Corrupt("shared object {}: empty System V segment", o.id);
      break;
    case ShmemKind::kAnon:
      if (o.size == 0) return Corrupt("shared object {}: empty shared anonymous object", o.id);
      break;
  }
  return {};
}

Status CheckRuns(const model::ShmemObject& o, uint64_t pages_size) {
  uint64_t limit = PageUp(o.size);
  uint64_t prev_end = 0;
  for (size_t i = 0; i < o.runs.size(); i++) {
    const model::ShmemRun& r = o.runs[i];
    if (!PageAligned(r.offset) || r.nr_pages == 0 || r.offset > limit ||
        r.nr_pages > (limit - r.offset) / kPageSize) {
      return Corrupt("shared object {}: run {} ({} pages at {:#x}) is not inside its {} bytes",
                     o.id, i, r.nr_pages, r.offset, o.size);
    }
    if (r.offset < prev_end) {
      return Corrupt("shared object {}: run {} at {:#x} overlaps or precedes the run before it",
                     o.id, i, r.offset);
    }
    uint64_t len = r.nr_pages * kPageSize;  // no overflow: <= limit
    prev_end = r.offset + len;
    if (!PageAligned(r.file_offset) || r.file_offset > pages_size ||
        len > pages_size - r.file_offset) {
      return Corrupt(
          "shared object {}: run {}: {} bytes at offset {:#x} are not inside the "
          "pages file ({} bytes)",
          o.id, i, len, r.file_offset, pages_size);
    }
  }
  return {};
}

const char* KindName(model::ShmemKind k) {
  switch (k) {
    case model::ShmemKind::kAnon:
      return "shared anonymous";
    case model::ShmemKind::kMemfd:
      return "memfd";
    case model::ShmemKind::kTmpfs:
      return "tmpfs";
    case model::ShmemKind::kSysv:
      return "System V";
  }
  return "unknown";
}

Status CheckVmaRef(const model::Vma& v, size_t i,
                   const std::unordered_map<uint64_t, const model::ShmemObject*>& by_id) {
  using model::ShmemKind;
  using model::VmaKind;
  bool must = v.kind == VmaKind::kAnonShared || v.kind == VmaKind::kSysvShm;
  bool may = must || v.kind == VmaKind::kFileShared || v.kind == VmaKind::kFilePrivate;
  if (v.shmem_id == 0) {
    if (must) return Corrupt("vma {} [{:#x}-{:#x}) names no shared object", i, v.start, v.end);
    return {};
  }
  if (!may) {
    return Corrupt("vma {} [{:#x}-{:#x}) of kind {} names shared object {}", i, v.start, v.end,
                   static_cast<uint32_t>(v.kind), v.shmem_id);
  }
  auto it = by_id.find(v.shmem_id);
  if (it == by_id.end()) {
    return Corrupt("vma {} [{:#x}-{:#x}) names shared object {}, which {} does not hold", i,
                   v.start, v.end, v.shmem_id, kShmemFile);
  }
  const model::ShmemObject& o = *it->second;
  bool fits = v.kind == VmaKind::kAnonShared ? o.kind == ShmemKind::kAnon
              : v.kind == VmaKind::kSysvShm
                  ? o.kind == ShmemKind::kSysv
                  : (o.kind == ShmemKind::kMemfd || o.kind == ShmemKind::kTmpfs);
  if (!fits) {
    return Corrupt("vma {} [{:#x}-{:#x}) of kind {} maps {} object {}", i, v.start, v.end,
                   static_cast<uint32_t>(v.kind), KindName(o.kind), o.id);
  }
  if (v.pgoff > kMaxShmemSize || v.length() > kMaxShmemSize - v.pgoff) {
    return Corrupt("vma {} [{:#x}-{:#x}): offset {:#x} is out of range", i, v.start, v.end,
                   v.pgoff);
  }
  // Restore maps these from a segment or object of exactly that size.
  if ((o.kind == ShmemKind::kAnon || o.kind == ShmemKind::kSysv) &&
      v.pgoff + v.length() > PageUp(o.size)) {
    return Corrupt("vma {} [{:#x}-{:#x}) at offset {:#x} reaches past the {} bytes of object {}", i,
                   v.start, v.end, v.pgoff, o.size, o.id);
  }
  return {};
}

Status CheckFdRef(const model::Fd& f,
                  const std::unordered_map<uint64_t, const model::ShmemObject*>& by_id) {
  bool is_shmem = f.type == model::FdType::kShmem;
  if (!is_shmem) {
    if (f.shmem_id != 0)
      return Corrupt("fd {} names shared object {} but is no FD_SHMEM", f.fd, f.shmem_id);
    return {};
  }
  auto it = by_id.find(f.shmem_id);
  if (it == by_id.end()) {
    return Corrupt("fd {} names shared object {}, which {} does not hold", f.fd, f.shmem_id,
                   kShmemFile);
  }
  auto kind = it->second->kind;
  if (kind != model::ShmemKind::kMemfd && kind != model::ShmemKind::kTmpfs) {
    return Corrupt("fd {} refers to {} object {}, only memfd and tmpfs objects have fds", f.fd,
                   KindName(kind), f.shmem_id);
  }
  return {};
}

}  // namespace

Status ValidateShmem(const model::ShmemTable& t, uint64_t pages_size) {
  bool any_run = false;
  std::vector<uint64_t> ids;
  for (const model::ShmemObject& o : t.objects) {
    CRYO_TRYV(CheckObjectFields(o));
    CRYO_TRYV(CheckRuns(o, pages_size));
    any_run |= !o.runs.empty();
    ids.push_back(o.id);
  }
  if (any_run || !t.pages_file.empty()) CRYO_TRYV(ValidatePagesFileName(t.pages_file));
  std::sort(ids.begin(), ids.end());
  if (auto dup = std::adjacent_find(ids.begin(), ids.end()); dup != ids.end()) {
    return Corrupt("shared object id {} appears twice", *dup);
  }
  return {};
}

Status ValidateShmemRefs(const model::ProcessTree& tree) {
  std::unordered_map<uint64_t, const model::ShmemObject*> by_id;
  for (const model::ShmemObject& o : tree.shmem.objects) by_id[o.id] = &o;
  for (const model::Process& p : tree.processes) {
    for (size_t i = 0; i < p.vmas.size(); i++) {
      CRYO_TRYV_CTX(CheckVmaRef(p.vmas[i], i, by_id), "mm of pid {}", p.pid);
    }
    for (const model::Fd& f : p.fds) CRYO_TRYV_CTX(CheckFdRef(f, by_id), "fds of pid {}", p.pid);
  }
  return {};
}

}  // namespace cryo::image
