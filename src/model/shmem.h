// Shared-memory objects of a dumped tree (shmem inodes: shared anonymous memory, memfds, unlinked
// tmpfs files, System V segments), stored once per image and referenced by id from the mappings
// (Vma::shmem_id) and fds (Fd::shmem_id) of every process that uses them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cryo::model {

enum class ShmemKind : uint32_t {
  kAnon = 0,   // MAP_SHARED|MAP_ANONYMOUS: the kernel's "/dev/zero (deleted)" shmem file
  kMemfd = 1,  // memfd_create(2)
  kTmpfs = 2,  // a tmpfs file (/dev/shm/...) unlinked while mapped or open
  kSysv = 3,   // a System V shared memory segment
};

// A run of the object's content: `nr_pages` pages at byte `offset` of the object, stored at
// `file_offset` of the tree's shmem pages file. Pages no run covers are zero (holes).
struct ShmemRun {
  uint64_t offset = 0;
  uint64_t nr_pages = 0;
  uint64_t file_offset = 0;
  bool operator==(const ShmemRun&) const = default;
};

// Bits of ShmemObject::flags.
enum ShmemFlag : uint32_t {
  kShmemSysvRemoved = 1u << 0,  // System V: IPC_RMID while attached (SHM_DEST)
  kShmemSysvLocked = 1u << 1,   // System V: SHM_LOCK
};

struct ShmemObject {
  uint64_t id = 0;  // > 0, unique in the image
  ShmemKind kind = ShmemKind::kAnon;
  uint64_t dev = 0;  // identity at dump (st_dev, st_ino of the shmem inode), informative
  uint64_t ino = 0;
  uint64_t size = 0;   // i_size in bytes (System V: the segment size)
  std::string name;    // memfd: its name (without "memfd:"); tmpfs: the path it had
  uint32_t mode = 0;   // permission bits, <= 0777
  uint32_t seals = 0;  // memfd: F_GET_SEALS (F_SEAL_SEAL when created without MFD_ALLOW_SEALING)
  uint32_t flags = 0;  // ShmemFlag bits
  // System V only: key (IPC_PRIVATE = 0), id, owner.
  int32_t sysv_key = 0;
  int32_t sysv_id = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<ShmemRun> runs;  // sorted by offset, not overlapping, inside the object
  bool operator==(const ShmemObject&) const = default;
};

struct ShmemTable {
  std::string pages_file;  // raw pages in the image directory (normally pages-shmem.img)
  std::vector<ShmemObject> objects;
  bool empty() const { return objects.empty(); }
  bool operator==(const ShmemTable&) const = default;
};

}  // namespace cryo::model
