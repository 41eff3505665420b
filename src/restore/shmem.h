// Shared-memory objects at restore (model/shmem.h): created once, in the cryo parent, before any
// restored process is cloned, so that every restored process inherits them as fds; each child
// maps its shared mappings from them and installs its FD_SHMEM fds from them. For a tree: create
// them before the first clone, pass the same object to every child (ChildContext::shmem), keep
// the fds open in any process that still clones others, and Commit() once all are restored.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "model/process.h"

namespace cryo::restore {

class ShmemObjects {
 public:
  ShmemObjects() = default;
  ShmemObjects(ShmemObjects&&) = default;
  ShmemObjects& operator=(ShmemObjects&&) = default;
  // Removes the System V segments it created unless Commit() ran (a failed restore leaves none).
  ~ShmemObjects();

  // Creates every object of `t` with its content from the pages file in `dir_fd`: shared
  // anonymous memory, memfds (name, size, mode, then seals), unlinked tmpfs files (O_TMPFILE in
  // the directory they were in, else a memfd of the same name), System V segments under their
  // key and id (through /proc/sys/kernel/shm_next_id; a segment that already has the id is used
  // only if it is the one the dump left behind: same key and size, nobody attached).
  static Result<ShmemObjects> Create(const model::ShmemTable& t, int dir_fd);

  // The fd of object `id` (not for System V), or -1.
  int FdOf(uint64_t id) const;
  // The System V id of object `id`, or -1.
  int SysvIdOf(uint64_t id) const;
  // Every fd held, by object id (the child keeps them until its fds are installed).
  std::map<uint64_t, int> Fds() const;

  // Every process is restored: segments that were removed (IPC_RMID) at dump are removed again,
  // the fds are closed.
  Status Commit();

 private:
  struct Handle {
    model::ShmemKind kind = model::ShmemKind::kAnon;
    UniqueFd fd;
    int shmid = -1;
    bool created = false;       // System V: a new segment (removed again on failure)
    bool remove_after = false;  // System V: IPC_RMID once every process is attached
  };
  std::map<uint64_t, Handle> handles_;
  bool committed_ = false;
};

// In the restore child: maps `v` (v.shmem_id != 0) at `at`, with the prot the premap uses (the
// blob sets the final one): a shared or private mapping of the object's fd at v.pgoff, or for
// System V an attach (shmat) moved to `at`.
Status PremapShmem(const model::Vma& v, uint64_t at, const ShmemObjects& objects);

// In the restore child: the object fds moved to numbers >= `floor` (out of the target's fd
// numbers), so that installing the target's fds cannot close them; closed when destroyed.
class ChildShmemFds {
 public:
  static Result<ChildShmemFds> Take(const ShmemObjects* objects, int floor);
  std::vector<int> Fds() const;
  // A new open file description of FD_SHMEM fd `f`'s object, with its flags and offset.
  Result<UniqueFd> Open(const model::Fd& f) const;

 private:
  std::map<uint64_t, UniqueFd> fds_;
};

}  // namespace cryo::restore
