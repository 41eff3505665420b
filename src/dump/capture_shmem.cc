#include "dump/capture_shmem.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/io.h"
#include "base/log.h"
#include "base/types.h"
#include "image/format.h"

namespace cryo::dump {
namespace {

constexpr std::string_view kMemfdPrefix = "/memfd:";
constexpr std::string_view kSysvPrefix = "/SYSV";
constexpr std::string_view kDeleted = " (deleted)";

Result<long> FsMagic(int fd, std::string_view what) {
  struct statfs sf {};
  if (::fstatfs(fd, &sf) < 0) return ErrnoError("statfs {}", what);
  return static_cast<long>(sf.f_type);
}

Result<UniqueFd> OpenObject(const std::string& link) {
  UniqueFd fd(::open(link.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open {}", link);
  return fd;
}

Result<uint64_t> InodeOf(pid_t pid, std::string_view proc_name) {
  std::string link = fmt::format("/proc/{}/ns/{}", pid, proc_name);
  struct stat st {};
  if (::stat(link.c_str(), &st) < 0) return ErrnoError("stat {}", link);
  return static_cast<uint64_t>(st.st_ino);
}

// System V state from IPC_STAT: the segment must be in our IPC namespace to be seen at all.
Status FillSysv(pid_t pid, model::ShmemObject& o, int shmid) {
  uint64_t theirs = CRYO_TRY(InodeOf(pid, "ipc"));
  uint64_t ours = CRYO_TRY(InodeOf(::getpid(), "ipc"));
  if (theirs != ours) {
    return MakeError(ErrorKind::kUnsupported,
                     "System V segment {}: the process is in another IPC namespace", shmid);
  }
  struct shmid_ds ds {};
  if (::shmctl(shmid, IPC_STAT, &ds) < 0)
    return ErrnoError("IPC_STAT of System V segment {}", shmid);
  o.sysv_id = shmid;
  o.sysv_key = ds.shm_perm.__key;
  o.size = ds.shm_segsz;
  o.mode = ds.shm_perm.mode & 0777;
  o.uid = ds.shm_perm.uid;
  o.gid = ds.shm_perm.gid;
  if (ds.shm_perm.mode & SHM_DEST) o.flags |= model::kShmemSysvRemoved;
  if (ds.shm_perm.mode & SHM_LOCKED) o.flags |= model::kShmemSysvLocked;
  return {};
}

Status FillMemfd(model::ShmemObject& o, int fd, std::string_view path) {
  std::string_view name = path;
  if (name.ends_with(kDeleted)) name.remove_suffix(kDeleted.size());
  name.remove_prefix(kMemfdPrefix.size());
  o.name = std::string(name);
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return ErrnoError("F_GET_SEALS of memfd {}", o.name);
  o.seals = static_cast<uint32_t>(seals);
  return {};
}

bool AllZero(const std::byte* p, size_t n) {
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < n / 8; i++) {
    if (w[i] != 0) return false;
  }
  return true;
}

// Appends the non-zero pages of [from, to) of `fd` to `out` at `*file_end`, as runs of `o`.
Status CopyExtent(int fd, model::ShmemObject& o, uint64_t from, uint64_t to, int out,
                  uint64_t* file_end) {
  constexpr size_t kChunk = 1 << 20;
  std::vector<std::byte> buf(kChunk);
  for (uint64_t at = from; at < to;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, to - at));
    ssize_t got = ::pread(fd, buf.data(), n, static_cast<off_t>(at));
    if (got < 0) return ErrnoError("read shared object {} at {:#x}", o.id, at);
    if (got == 0) break;  // truncated meanwhile: the rest is past the end
    size_t len = PageUp(static_cast<size_t>(got));
    std::fill(buf.begin() + got, buf.begin() + len, std::byte{0});
    for (size_t off = 0; off < len; off += kPageSize) {
      if (AllZero(buf.data() + off, kPageSize)) continue;
      uint64_t page = at + off;
      model::ShmemRun* last = o.runs.empty() ? nullptr : &o.runs.back();
      if (last != nullptr && last->offset + last->nr_pages * kPageSize == page &&
          last->file_offset + last->nr_pages * kPageSize == *file_end) {
        last->nr_pages++;
      } else {
        o.runs.push_back({page, 1, *file_end});
      }
      CRYO_TRYV(WriteFull(out, {buf.data() + off, kPageSize}, image::kShmemPagesFile));
      *file_end += kPageSize;
    }
    at += len;
  }
  return {};
}

// The data extents of the object (shmem answers SEEK_DATA/SEEK_HOLE; swapped pages are data).
Status CopyObject(int fd, model::ShmemObject& o, int out, uint64_t* file_end) {
  uint64_t end = PageUp(o.size);
  uint64_t at = 0;
  while (at < end) {
    off_t data = ::lseek(fd, static_cast<off_t>(at), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only holes from here
    if (data < 0) return ErrnoError("SEEK_DATA in shared object {}", o.id);
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return ErrnoError("SEEK_HOLE in shared object {}", o.id);
    uint64_t s = PageDown(static_cast<uint64_t>(data));
    uint64_t e = std::min<uint64_t>(PageUp(static_cast<uint64_t>(hole)), end);
    if (s >= e) break;
    CRYO_TRYV(CopyExtent(fd, o, s, e, out, file_end));
    at = e;
  }
  return {};
}

}  // namespace

bool IsShmemMapping(const proc::MapsEntry& m) {
  // A System V segment's inode number is its id, which may be 0 (then maps keeps " (deleted)"
  // in the path and does not flag it).
  if (m.shared && m.path.starts_with(kSysvPrefix)) return true;
  if (m.inode == 0) return false;
  return m.path.starts_with(kMemfdPrefix) || m.deleted;
}

void SetShmemVmaKind(const proc::MapsEntry& m, model::Vma& v) {
  if (m.shared && m.path.starts_with(kSysvPrefix)) {
    v.kind = model::VmaKind::kSysvShm;
  } else if (m.shared && m.path == "/dev/zero") {
    v.kind = model::VmaKind::kAnonShared;
  } else {
    v.kind = m.shared ? model::VmaKind::kFileShared : model::VmaKind::kFilePrivate;
  }
}

template <typename Make>
Result<model::ShmemObject*> ShmemCollector::Find(dev_t dev, ino_t ino, Make make) {
  auto key = std::make_pair(static_cast<uint64_t>(dev), static_cast<uint64_t>(ino));
  if (auto it = index_.find(key); it != index_.end()) return &entries_[it->second].object;
  Entry e;
  e.object.id = entries_.size() + 1;
  e.object.dev = key.first;
  e.object.ino = key.second;
  CRYO_TRYV(make(e));
  index_[key] = entries_.size();
  entries_.push_back(std::move(e));
  return &entries_.back().object;
}

Status ShmemCollector::AddMapping(pid_t pid, const proc::MapsEntry& m, model::Vma& v) {
  auto refuse = [&](std::string_view what) {
    return MakeError(ErrorKind::kUnsupported, "mapping {:#x}-{:#x} {}: {}", m.start, m.end, m.path,
                     what);
  };
  std::string link = fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, m.start, m.end);
  UniqueFd fd = CRYO_TRY(OpenObject(link));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return ErrnoError("stat {}", link);
  long magic = CRYO_TRY(FsMagic(fd.get(), link));
  if (magic == HUGETLBFS_MAGIC) return refuse("hugetlb shared memory is not supported");
  if (magic != TMPFS_MAGIC) return refuse("a mapping of a deleted file is not supported");

  SetShmemVmaKind(m, v);
  model::ShmemKind kind = v.kind == model::VmaKind::kSysvShm      ? model::ShmemKind::kSysv
                          : v.kind == model::VmaKind::kAnonShared ? model::ShmemKind::kAnon
                          : m.path.starts_with(kMemfdPrefix)      ? model::ShmemKind::kMemfd
                                                                  : model::ShmemKind::kTmpfs;
  auto make = [&](Entry& e) -> Status {
    model::ShmemObject& o = e.object;
    o.kind = kind;
    o.size = static_cast<uint64_t>(st.st_size);
    o.mode = st.st_mode & 0777;
    if (kind == model::ShmemKind::kSysv) CRYO_TRYV(FillSysv(pid, o, static_cast<int>(st.st_ino)));
    if (kind == model::ShmemKind::kMemfd) CRYO_TRYV(FillMemfd(o, fd.get(), m.path));
    if (kind == model::ShmemKind::kTmpfs) o.name = m.path;
    e.fd = std::move(fd);
    return {};
  };
  model::ShmemObject* o = CRYO_TRY_CTX(Find(st.st_dev, st.st_ino, make), "mapping {:#x}-{:#x} {}",
                                       m.start, m.end, m.path);
  if (o->kind != kind) return refuse("one inode seen as two kinds of shared memory");
  bool whole = o->kind == model::ShmemKind::kAnon || o->kind == model::ShmemKind::kSysv;
  if (whole && m.offset + (m.end - m.start) > PageUp(o->size)) {
    // mremap can grow such a mapping past its object; the part beyond can only fault (SIGBUS).
    return refuse("a mapping that reaches past the end of its shared memory is not supported");
  }
  if ((o->seals & F_SEAL_FUTURE_WRITE) && m.shared && m.write) {
    return refuse("a writable mapping of a memfd sealed F_SEAL_FUTURE_WRITE is not supported");
  }
  v.shmem_id = o->id;
  v.file = {};
  return {};
}

Result<bool> ShmemCollector::AddFd(pid_t pid, model::Fd& f, const struct stat& st) {
  bool memfd = f.path.starts_with(kMemfdPrefix);
  if (!memfd && !f.path.ends_with(kDeleted)) return false;
  if (f.path.empty() || f.path[0] != '/' || f.path.starts_with("/dev/zero") ||
      f.path.starts_with(kSysvPrefix)) {
    // An fd of shared anonymous memory or of a System V segment (opened through map_files).
    return MakeError(ErrorKind::kUnsupported,
                     "pid {}: fd {} ({}): an fd of this kind of shared memory is not supported",
                     pid, f.fd, f.path);
  }
  std::string link = fmt::format("/proc/{}/fd/{}", pid, f.fd);
  UniqueFd fd = CRYO_TRY(OpenObject(link));
  long magic = CRYO_TRY(FsMagic(fd.get(), link));
  if (magic != TMPFS_MAGIC) return false;  // the caller refuses what it does not know
  auto make = [&](Entry& e) -> Status {
    model::ShmemObject& o = e.object;
    o.kind = memfd ? model::ShmemKind::kMemfd : model::ShmemKind::kTmpfs;
    o.size = static_cast<uint64_t>(st.st_size);
    o.mode = st.st_mode & 0777;
    if (memfd) {
      CRYO_TRYV(FillMemfd(o, fd.get(), f.path));
    } else {
      o.name = f.path.substr(0, f.path.size() - kDeleted.size());
    }
    e.fd = std::move(fd);
    return {};
  };
  model::ShmemObject* o =
      CRYO_TRY_CTX(Find(st.st_dev, st.st_ino, make), "pid {}: fd {} ({})", pid, f.fd, f.path);
  if (o->kind != model::ShmemKind::kMemfd && o->kind != model::ShmemKind::kTmpfs) {
    return MakeError(ErrorKind::kUnsupported,
                     "pid {}: fd {} ({}): an fd of this kind of shared memory is not supported",
                     pid, f.fd, f.path);
  }
  f.type = model::FdType::kShmem;
  f.shmem_id = o->id;
  f.file = {};
  return true;
}

Result<model::ShmemTable> ShmemCollector::CopyContent(int dir_fd) {
  model::ShmemTable t;
  if (entries_.empty()) return t;
  t.pages_file = std::string(image::kShmemPagesFile);
  UniqueFd out(
      ::openat(dir_fd, t.pages_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoError("create {}", t.pages_file);
  uint64_t file_end = 0;
  for (Entry& e : entries_) {
    // The object may have grown or shrunk since it was first seen (another process of the
    // tree); its size now is what its content has.
    struct stat st {};
    if (::fstat(e.fd.get(), &st) == 0 && e.object.kind != model::ShmemKind::kSysv) {
      e.object.size = static_cast<uint64_t>(st.st_size);
    }
    CRYO_TRYV(CopyObject(e.fd.get(), e.object, out.get(), &file_end));
    t.objects.push_back(e.object);
  }
  log::Debug("shared memory: {} objects, {} bytes of content", t.objects.size(), file_end);
  return t;
}

}  // namespace cryo::dump
