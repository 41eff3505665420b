// Capture of shared-memory objects (shmem inodes): shared anonymous memory, memfds, unlinked
// tmpfs files and System V segments, found through the mappings and fds of the processes of a
// tree. Each object is recorded once, identified by its inode (device and number), and its
// content is read from the object itself (not only the pages one process mapped). For a tree:
// one collector for all processes (each AddMapping/AddFd while that process is frozen), then one
// CopyContent while all are still frozen.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <map>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "model/process.h"
#include "proc/maps.h"

namespace cryo::dump {

// True for a mapping ShmemCollector::AddMapping handles: shared anonymous memory, System V
// segments, memfds, and unlinked files (which AddMapping accepts only on tmpfs).
bool IsShmemMapping(const proc::MapsEntry& m);
// The vma kind of such a mapping, without looking at its object (pre-dump records no objects).
void SetShmemVmaKind(const proc::MapsEntry& m, model::Vma& v);

class ShmemCollector {
 public:
  // Mapping `m` of `pid`, for which IsShmemMapping is true: records its object (once) and sets
  // v.kind and v.shmem_id. kUnsupported naming the mapping for what restore cannot recreate: an
  // unlinked file that is not on tmpfs, a hugetlb memfd, a System V segment of another IPC
  // namespace, a writable shared mapping of a memfd sealed F_SEAL_FUTURE_WRITE.
  Status AddMapping(pid_t pid, const proc::MapsEntry& m, model::Vma& v);
  // Whether fd `f` of `pid` (a regular file, `st` its stat, `f.path` its link) is a memfd or an
  // unlinked tmpfs file; if so records its object and makes `f` an FD_SHMEM naming it.
  Result<bool> AddFd(pid_t pid, model::Fd& f, const struct stat& st);
  // Copies every object's content (its data pages: SEEK_DATA/SEEK_HOLE, zero pages skipped) to
  // the pages file kShmemPagesFile of the image directory `dir_fd`, which must not exist; returns
  // the table for the image. Empty table and no file when there is no object.
  Result<model::ShmemTable> CopyContent(int dir_fd);

  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    model::ShmemObject object;
    UniqueFd fd;  // read-only, on the object's inode
  };
  // The object of inode (dev, ino), created by `make` when first seen.
  template <typename Make>
  Result<model::ShmemObject*> Find(dev_t dev, ino_t ino, Make make);

  std::vector<Entry> entries_;
  std::map<std::pair<uint64_t, uint64_t>, size_t> index_;
};

}  // namespace cryo::dump
