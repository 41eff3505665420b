#include <fcntl.h>

#include "base/io.h"
#include "restore/fd_kinds.h"

namespace cryo::restore {
namespace {

Result<UniqueFd> Above(UniqueFd fd, int floor, std::string_view what) {
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, floor);
  if (moved < 0) return ErrnoError("move {} above fd {}", what, floor);
  return UniqueFd(moved);
}

// The status flags (O_NONBLOCK, O_APPEND, O_DIRECT, ...) of the open file `fd` shares with `f`.
Status SetStatusFlags(int fd, const model::Fd& f) {
  if (::fcntl(fd, F_SETFL, static_cast<int>(f.flags) & ~O_ACCMODE) < 0) {
    return ErrnoError("fd {}: set flags {:#o}", f.fd, f.flags);
  }
  return {};
}

}  // namespace

const std::string* PipeSet::DataOf(const model::Fd& f) const {
  for (const model::Fd& o : fds_) {
    if (o.type == f.type && o.object_id == f.object_id && !o.data.empty()) return &o.data;
  }
  return nullptr;
}

Result<PipeSet::Held> PipeSet::Create(const model::Fd& f) {
  Held h;
  std::string what = fmt::format("fd {}: {}", f.fd, f.path);
  if (f.type == model::FdType::kPipe) {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) < 0) return ErrnoError("{}: pipe2", what);
    UniqueFd rd(ends[0]), wr(ends[1]);
    h.read = CRYO_TRY(Above(std::move(rd), floor_, what));
    h.write = CRYO_TRY(Above(std::move(wr), floor_, what));
  } else {
    // O_RDWR opens a FIFO without waiting for a peer (Linux-specific, fifo(7)); this open keeps
    // the data alive while the process's own opens are made.
    UniqueFd rw(::open(f.path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!rw.valid()) return ErrnoError("{}: open FIFO", what);
    h.read = CRYO_TRY(Above(std::move(rw), floor_, what));
  }
  int writer = h.write.valid() ? h.write.get() : h.read.get();
  // Shrinking below the data would fail, and growing past fs.pipe-max-size needs
  // CAP_SYS_RESOURCE: both show up here as errors naming the fd.
  if (f.pipe_size != 0 && ::fcntl(writer, F_SETPIPE_SZ, static_cast<int>(f.pipe_size)) < 0) {
    return ErrnoError("{}: set pipe size {}", what, f.pipe_size);
  }
  if (const std::string* data = DataOf(f)) {
    CRYO_TRYV(WriteFull(writer, std::as_bytes(std::span(*data)), what));
  }
  return h;
}

Result<UniqueFd> PipeSet::Open(const model::Fd& f) {
  auto key = std::make_pair(f.type, f.object_id);
  auto it = held_.find(key);
  if (it == held_.end()) it = held_.emplace(key, CRYO_TRY(Create(f))).first;
  const Held& h = it->second;
  UniqueFd out;
  if (f.type == model::FdType::kPipe) {
    int end = (f.flags & O_ACCMODE) == O_WRONLY ? h.write.get() : h.read.get();
    out.Reset(::fcntl(end, F_DUPFD_CLOEXEC, 0));
    if (!out.valid()) return ErrnoError("fd {}: dup pipe end", f.fd);
  } else {
    int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
    out.Reset(::open(f.path.c_str(), flags | O_CLOEXEC | O_NONBLOCK));
    if (!out.valid()) return ErrnoError("fd {}: open FIFO {}", f.fd, f.path);
  }
  CRYO_TRYV(SetStatusFlags(out.get(), f));
  return out;
}

}  // namespace cryo::restore
