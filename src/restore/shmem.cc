#include "restore/shmem.h"

#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "base/io.h"
#include "base/log.h"
#include "base/types.h"

namespace cryo::restore {
namespace {

constexpr char kShmNextId[] = "/proc/sys/kernel/shm_next_id";

// A temporary shared mapping of an object in cryo, for filling it.
class TempMap {
 public:
  TempMap(void* at, size_t len) : at_(at), len_(len) {}
  TempMap(const TempMap&) = delete;
  TempMap& operator=(const TempMap&) = delete;
  ~TempMap() {
    if (at_ != MAP_FAILED && at_ != nullptr) ::munmap(at_, len_);
  }
  std::byte* data() const { return static_cast<std::byte*>(at_); }

 private:
  void* at_;
  size_t len_;
};

Status FillFrom(std::byte* base, const model::ShmemObject& o, int pages_fd) {
  for (const model::ShmemRun& r : o.runs) {
    CRYO_TRYV_CTX(PreadFull(pages_fd, {base + r.offset, r.nr_pages * kPageSize}, r.file_offset,
                            "shared memory pages"),
                  "shared object {}", o.id);
  }
  return {};
}

Status FillFd(int fd, const model::ShmemObject& o, int pages_fd) {
  if (o.runs.empty()) return {};
  size_t len = PageUp(o.size);
  void* at = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (at == MAP_FAILED) return ErrnoError("map shared object {} to fill it", o.id);
  TempMap m(at, len);
  return FillFrom(m.data(), o, pages_fd);
}

Result<UniqueFd> CreateAnon(const model::ShmemObject& o) {
  size_t len = PageUp(o.size);
  void* at = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (at == MAP_FAILED) return ErrnoError("create shared anonymous memory of {} bytes", len);
  TempMap m(at, len);
  // The mapping's own shmem file ("/dev/zero (deleted)"), as the process had it.
  auto start = reinterpret_cast<uint64_t>(at);
  std::string link = fmt::format("/proc/self/map_files/{:x}-{:x}", start, start + len);
  UniqueFd fd(::open(link.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open {}", link);
  return fd;
}

Result<UniqueFd> CreateMemfd(const std::string& name) {
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return ErrnoError("memfd_create {}", name);
  return UniqueFd(fd);
}

// An unlinked tmpfs file: created under its old path and unlinked again, so that it keeps its
// name ("<path> (deleted)"); if that path is taken, an O_TMPFILE in the same directory; a memfd
// if even that is impossible.
Result<UniqueFd> CreateTmpfs(const model::ShmemObject& o) {
  UniqueFd named(
      ::open(o.name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, o.mode));
  if (named.valid()) {
    if (::unlink(o.name.c_str()) < 0) return ErrnoError("unlink {} again", o.name);
    return named;
  }
  std::string_view path = o.name;
  size_t slash = path.rfind('/');  // validated: the path is absolute
  std::string dir(slash == 0 ? std::string_view("/") : path.substr(0, slash));
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, o.mode));
  if (fd.valid()) return fd;
  log::Warn("shared object {}: no unlinked file in {} ({}); a memfd stands in for {}", o.id, dir,
            std::strerror(errno), o.name);
  return CreateMemfd(std::string(path.substr(slash + 1)));
}

Status Seal(int fd, const model::ShmemObject& o) {
  uint32_t seals = o.seals & ~static_cast<uint32_t>(F_SEAL_SEAL);
  if (seals != 0 && ::fcntl(fd, F_ADD_SEALS, seals) < 0) {
    return ErrnoError("seal memfd {} with {:#x}", o.name, seals);
  }
  if ((o.seals & F_SEAL_SEAL) && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) < 0) {
    return ErrnoError("seal memfd {} with F_SEAL_SEAL", o.name);
  }
  return {};
}

Result<UniqueFd> CreateFileObject(const model::ShmemObject& o, int pages_fd) {
  UniqueFd fd;
  switch (o.kind) {
    case model::ShmemKind::kAnon:
      fd = CRYO_TRY(CreateAnon(o));
      break;
    case model::ShmemKind::kMemfd:
      fd = CRYO_TRY(CreateMemfd(o.name));
      break;
    default:
      fd = CRYO_TRY(CreateTmpfs(o));
      break;
  }
  if (o.kind != model::ShmemKind::kAnon && ::ftruncate(fd.get(), static_cast<off_t>(o.size)) < 0) {
    return ErrnoError("size shared object {} to {} bytes", o.id, o.size);
  }
  CRYO_TRYV(FillFd(fd.get(), o, pages_fd));
  if (o.kind != model::ShmemKind::kAnon && ::fchmod(fd.get(), o.mode) < 0) {
    return ErrnoError("chmod shared object {} to {:#o}", o.id, o.mode);
  }
  if (o.kind == model::ShmemKind::kMemfd) CRYO_TRYV(Seal(fd.get(), o));
  return fd;
}

// The segment the dump left behind (the process was killed, the segment was not removed): same
// key and size, nobody attached. Anything else with that id is someone else's.
Result<bool> ReuseSysv(const model::ShmemObject& o) {
  struct shmid_ds ds {};
  if (::shmctl(o.sysv_id, IPC_STAT, &ds) < 0) {
    if (errno == EINVAL || errno == EIDRM) return false;
    return ErrnoError("IPC_STAT of System V segment {}", o.sysv_id);
  }
  bool same = ds.shm_perm.__key == o.sysv_key && o.sysv_key != IPC_PRIVATE &&
              ds.shm_segsz == o.size && ds.shm_nattch == 0 && !(ds.shm_perm.mode & SHM_DEST);
  if (!same) {
    return MakeError(ErrorKind::kUnsupported,
                     "System V segment id {} exists (key {:#x}, {} bytes, {} attached) and is not "
                     "the one the dump left behind; remove it or restore in a fresh IPC namespace",
                     o.sysv_id, static_cast<uint32_t>(ds.shm_perm.__key), ds.shm_segsz,
                     ds.shm_nattch);
  }
  return true;
}

Result<int> CreateSysv(const model::ShmemObject& o) {
  CRYO_TRYV_CTX(WriteWholeFile(kShmNextId, fmt::format("{}", o.sysv_id)), "ask for System V id {}",
                o.sysv_id);
  int id = ::shmget(o.sysv_key, o.size, IPC_CREAT | IPC_EXCL | static_cast<int>(o.mode));
  int err = errno;
  (void)WriteWholeFile(kShmNextId, "-1");  // a failed shmget leaves the request in place
  if (id < 0) {
    if (err == EEXIST) {
      return MakeError(ErrorKind::kUnsupported,
                       "System V key {:#x} exists with another id; remove it to restore",
                       static_cast<uint32_t>(o.sysv_key));
    }
    return SysError(err, fmt::format("create System V segment {} ({} bytes)", o.sysv_id, o.size));
  }
  if (id != o.sysv_id) {
    ::shmctl(id, IPC_RMID, nullptr);
    return MakeError(ErrorKind::kUnsupported,
                     "System V segment got id {}, not {} (another segment created meanwhile?)", id,
                     o.sysv_id);
  }
  return id;
}

Status SetupSysv(const model::ShmemObject& o, int id, int pages_fd) {
  struct shmid_ds ds {};
  if (::shmctl(id, IPC_STAT, &ds) < 0) return ErrnoError("IPC_STAT of System V segment {}", id);
  ds.shm_perm.uid = o.uid;
  ds.shm_perm.gid = o.gid;
  ds.shm_perm.mode = static_cast<unsigned short>(o.mode);
  if (::shmctl(id, IPC_SET, &ds) < 0) return ErrnoError("IPC_SET of System V segment {}", id);
  if ((o.flags & model::kShmemSysvLocked) && ::shmctl(id, SHM_LOCK, nullptr) < 0) {
    return ErrnoError("SHM_LOCK of System V segment {}", id);
  }
  void* at = ::shmat(id, nullptr, 0);
  if (at == reinterpret_cast<void*>(-1)) return ErrnoError("attach System V segment {}", id);
  // A reused segment holds what the process wrote after the dump: holes first, then the image.
  size_t len = PageUp(o.size);
  Status s;
  if (::madvise(at, len, MADV_REMOVE) < 0) s = ErrnoError("clear System V segment {}", id);
  if (s) s = FillFrom(static_cast<std::byte*>(at), o, pages_fd);
  ::shmdt(at);
  return s;
}

}  // namespace

ShmemObjects::~ShmemObjects() {
  if (committed_) return;
  for (auto& [id, h] : handles_) {
    if (h.created && h.shmid >= 0) ::shmctl(h.shmid, IPC_RMID, nullptr);
  }
}

Result<ShmemObjects> ShmemObjects::Create(const model::ShmemTable& t, int dir_fd) {
  ShmemObjects out;
  if (t.objects.empty()) return out;
  UniqueFd pages;
  bool any_run = false;
  for (const auto& o : t.objects) any_run |= !o.runs.empty();
  if (any_run) {
    pages.Reset(::openat(dir_fd, t.pages_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!pages.valid()) return ErrnoError("open {}", t.pages_file);
  }
  for (const model::ShmemObject& o : t.objects) {
    Handle& h = out.handles_[o.id];
    h.kind = o.kind;
    if (o.kind != model::ShmemKind::kSysv) {
      h.fd = CRYO_TRY_CTX(CreateFileObject(o, pages.get()), "shared object {} ({})", o.id, o.name);
      continue;
    }
    bool reuse = CRYO_TRY(ReuseSysv(o));
    h.shmid = reuse ? o.sysv_id : CRYO_TRY(CreateSysv(o));
    h.created = !reuse;
    h.remove_after = (o.flags & model::kShmemSysvRemoved) != 0;
    CRYO_TRYV(SetupSysv(o, h.shmid, pages.get()));
  }
  return out;
}

int ShmemObjects::FdOf(uint64_t id) const {
  auto it = handles_.find(id);
  return it == handles_.end() ? -1 : it->second.fd.get();
}

int ShmemObjects::SysvIdOf(uint64_t id) const {
  auto it = handles_.find(id);
  return it == handles_.end() ? -1 : it->second.shmid;
}

std::map<uint64_t, int> ShmemObjects::Fds() const {
  std::map<uint64_t, int> out;
  for (const auto& [id, h] : handles_) {
    if (h.fd.valid()) out[id] = h.fd.get();
  }
  return out;
}

Status ShmemObjects::Commit() {
  committed_ = true;
  Status result;
  for (auto& [id, h] : handles_) {
    h.fd.Reset();
    if (h.remove_after && ::shmctl(h.shmid, IPC_RMID, nullptr) < 0 && result) {
      result = ErrnoError("remove System V segment {} again", h.shmid);
    }
  }
  return result;
}

Status PremapShmem(const model::Vma& v, uint64_t at, const ShmemObjects& objects) {
  auto* want = reinterpret_cast<void*>(at);
  if (v.kind == model::VmaKind::kSysvShm) {
    int id = objects.SysvIdOf(v.shmem_id);
    int flags = (v.prot & PROT_WRITE) ? 0 : SHM_RDONLY;
    if (v.prot & PROT_EXEC) flags |= SHM_EXEC;
    void* base = ::shmat(id, nullptr, flags);
    if (base == reinterpret_cast<void*>(-1)) {
      return ErrnoError("attach System V segment {} for {:#x}", id, v.start);
    }
    // shmat maps the whole segment; the vma may be a part of it (the process unmapped the rest).
    struct shmid_ds ds {};
    if (::shmctl(id, IPC_STAT, &ds) < 0) return ErrnoError("IPC_STAT of segment {}", id);
    auto b = reinterpret_cast<uint64_t>(base);
    uint64_t seg = PageUp(ds.shm_segsz);
    void* got = ::mremap(reinterpret_cast<void*>(b + v.pgoff), v.length(), v.length(),
                         MREMAP_MAYMOVE | MREMAP_FIXED, want);
    if (got != want) return ErrnoError("move System V segment {} to {:#x}", id, at);
    if (v.pgoff > 0) ::munmap(base, v.pgoff);
    if (v.pgoff + v.length() < seg) {
      ::munmap(reinterpret_cast<void*>(b + v.pgoff + v.length()), seg - v.pgoff - v.length());
    }
    return {};
  }
  int fd = objects.FdOf(v.shmem_id);
  bool shared = v.kind != model::VmaKind::kFilePrivate;
  int prot = shared ? (v.prot & ~PROT_EXEC) : (PROT_READ | PROT_WRITE);
  int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
  void* got = ::mmap(want, v.length(), prot, flags, fd, static_cast<off_t>(v.pgoff));
  if (got == MAP_FAILED) {
    return ErrnoError("premap shared object {} ({}) at {:#x}", v.shmem_id, v.name, at);
  }
  return {};
}

Result<ChildShmemFds> ChildShmemFds::Take(const ShmemObjects* objects, int floor) {
  ChildShmemFds out;
  if (objects == nullptr) return out;
  for (const auto& [id, fd] : objects->Fds()) {
    int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (moved < 0) return ErrnoError("move shared object {} above fd {}", id, floor);
    out.fds_[id] = UniqueFd(moved);
  }
  return out;
}

std::vector<int> ChildShmemFds::Fds() const {
  std::vector<int> out;
  for (const auto& [id, fd] : fds_) out.push_back(fd.get());
  return out;
}

Result<UniqueFd> ChildShmemFds::Open(const model::Fd& f) const {
  auto it = fds_.find(f.shmem_id);
  if (it == fds_.end()) {
    return MakeError(ErrorKind::kInternal, "fd {}: shared object {} was not created", f.fd,
                     f.shmem_id);
  }
  // A new open file description of the same inode: its own flags and offset.
  std::string link = fmt::format("/proc/self/fd/{}", it->second.get());
  int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
  UniqueFd fd(::open(link.c_str(), flags | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("fd {}: reopen shared object {}", f.fd, f.shmem_id);
  if (::lseek(fd.get(), static_cast<off_t>(f.pos), SEEK_SET) < 0) {
    return ErrnoError("fd {}: seek to {}", f.fd, f.pos);
  }
  return fd;
}

}  // namespace cryo::restore
