#include <fcntl.h>
#include <sys/ioctl.h>

#include <map>
#include <utility>

#include "base/io.h"
#include "base/unique_fd.h"
#include "dump/fd_kinds.h"
#include "sys/syscalls.h"

namespace cryo::dump {
namespace {

bool IsPipeLike(const model::Fd& f) {
  return f.type == model::FdType::kPipe || f.type == model::FdType::kFifo;
}
bool Reads(const model::Fd& f) { return (f.flags & O_ACCMODE) != O_WRONLY; }
bool Writes(const model::Fd& f) { return (f.flags & O_ACCMODE) != O_RDONLY; }

// One pipe or FIFO: the indexes of the fds that have their own open file (no dups).
struct PipeGroup {
  std::vector<size_t> opens;
  int readers = 0;
  int writers = 0;
};

Status CheckEnds(pid_t pid, const model::Fd& first, const PipeGroup& g) {
  auto refuse = [&](std::string_view why) {
    return MakeError(ErrorKind::kUnsupported, "pid {}: fd {} ({}): {}", pid, first.fd, first.path,
                     why);
  };
  if (g.readers == 0) return refuse("the reading end of this pipe is outside the process");
  if (g.writers == 0) return refuse("the writing end of this pipe is outside the process");
  if (first.type == model::FdType::kPipe &&
      (g.readers != 1 || g.writers != 1 || g.opens.size() != 2)) {
    return refuse("this pipe was reopened through /proc; not supported");
  }
  return {};
}

}  // namespace

// Copies the bytes buffered in `pipe` (an end that reads) with tee(2), which duplicates the
// pipe's buffers into one of ours and leaves the source as it was.
Result<std::string> PeekPipe(int pipe, int size, std::string_view what) {
  int queued = 0;
  if (::ioctl(pipe, FIONREAD, &queued) < 0) return ErrnoError("FIONREAD {}", what);
  if (queued == 0) return std::string();
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC | O_NONBLOCK) < 0) return ErrnoError("pipe for copying {}", what);
  UniqueFd rd(ends[0]), wr(ends[1]);
  // Same size, same number of buffer slots: tee never runs out of room.
  if (::fcntl(wr.get(), F_SETPIPE_SZ, size) < 0) {
    return ErrnoError("size a pipe of {} bytes to copy {}", size, what);
  }
  ssize_t copied = ::tee(pipe, wr.get(), static_cast<size_t>(queued), SPLICE_F_NONBLOCK);
  if (copied < 0) return ErrnoError("tee {}", what);
  if (copied != queued) {
    return MakeError(ErrorKind::kInternal, "tee {}: copied {} of {} bytes", what, copied, queued);
  }
  std::string data(static_cast<size_t>(queued), '\0');
  CRYO_TRYV(ReadFull(rd.get(), std::as_writable_bytes(std::span(data)), what));
  return data;
}

namespace {

Status CaptureGroup(pid_t pid, int pidfd, std::vector<model::Fd>& fds, const PipeGroup& g) {
  model::Fd* reader = nullptr;
  for (size_t i : g.opens) {
    if (Reads(fds[i])) {
      reader = &fds[i];
      break;
    }
  }
  std::string what = fmt::format("fd {} ({}) of pid {}", reader->fd, reader->path, pid);
  UniqueFd mine = CRYO_TRY_CTX(sys::PidfdGetfd(pidfd, reader->fd), "take {}", what);
  int size = ::fcntl(mine.get(), F_GETPIPE_SZ);
  if (size < 0) return ErrnoError("F_GETPIPE_SZ {}", what);
  reader->data = CRYO_TRY(PeekPipe(mine.get(), size, what));
  for (size_t i : g.opens) fds[i].pipe_size = static_cast<uint32_t>(size);
  return {};
}

}  // namespace

Status CapturePipes(pid_t pid, std::vector<model::Fd>& fds, bool in_tree) {
  std::map<std::pair<model::FdType, uint64_t>, PipeGroup> groups;
  for (size_t i = 0; i < fds.size(); i++) {
    if (!IsPipeLike(fds[i]) || fds[i].shares_with != -1) continue;
    PipeGroup& g = groups[{fds[i].type, fds[i].object_id}];
    g.opens.push_back(i);
    g.readers += Reads(fds[i]);
    g.writers += Writes(fds[i]);
  }
  // In a tree, a pipe missing an end here may have it in another process.
  if (in_tree)
    std::erase_if(groups,
                  [](const auto& kv) { return kv.second.readers == 0 || kv.second.writers == 0; });
  if (groups.empty()) return {};
  for (const auto& [key, g] : groups) CRYO_TRYV(CheckEnds(pid, fds[g.opens[0]], g));
  UniqueFd pidfd = CRYO_TRY_CTX(sys::PidfdOpen(pid), "pidfd of {}", pid);
  for (const auto& [key, g] : groups) CRYO_TRYV(CaptureGroup(pid, pidfd.get(), fds, g));
  // Dups carry the size too, for whoever reads the image.
  for (model::Fd& f : fds) {
    if (IsPipeLike(f) && f.shares_with != -1) {
      for (const model::Fd& o : fds) {
        if (o.fd == f.shares_with) f.pipe_size = o.pipe_size;
      }
    }
  }
  return {};
}

}  // namespace cryo::dump
