#include <fcntl.h>
#include <sys/file.h>

#include "restore/fd_kinds.h"

namespace cryo::restore {
namespace {

Status TakeRecordLock(const model::Fd& f, const model::FileLock& l) {
  struct flock fl {};
  fl.l_type = static_cast<short>(l.write ? F_WRLCK : F_RDLCK);
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(l.start);
  fl.l_len = l.end == UINT64_MAX ? 0 : static_cast<off_t>(l.end - l.start + 1);
  int cmd = l.kind == model::LockKind::kOfd ? F_OFD_SETLK : F_SETLK;
  if (::fcntl(f.fd, cmd, &fl) < 0) {
    return ErrnoError("fd {}: retake {} lock on {} bytes {}-{}", f.fd,
                      l.kind == model::LockKind::kOfd ? "OFD" : "record", f.path, l.start, l.end);
  }
  return {};
}

}  // namespace

// Non-blocking: a lock another process took since the dump is an error (EAGAIN) naming the
// file, not a hang.
Status RetakeLocks(const model::Fd& f) {
  for (const model::FileLock& l : f.locks) {
    if (l.kind == model::LockKind::kFlock) {
      if (::flock(f.fd, (l.write ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
        return ErrnoError("fd {}: retake flock on {}", f.fd, f.path);
      }
    } else {
      CRYO_TRYV(TakeRecordLock(f, l));
    }
  }
  return {};
}

}  // namespace cryo::restore
