// fds-<pid>.img ⇄ a process's open file descriptors.
#include "image/codec.h"
#include "image/codec_util.h"
#include "image/cryo.pb.h"
#include "image/image_file.h"
#include "image/inet_codec.h"
#include "image/tty_codec.h"

namespace cryo::image {

static_assert(int(model::FdType::kRegular) == pb::FD_REGULAR);
static_assert(int(model::FdType::kDirectory) == pb::FD_DIRECTORY);
static_assert(int(model::FdType::kCharDevice) == pb::FD_CHAR_DEVICE);
static_assert(int(model::FdType::kInherited) == pb::FD_INHERITED);
static_assert(int(model::FdType::kPipe) == pb::FD_PIPE);
static_assert(int(model::FdType::kFifo) == pb::FD_FIFO);
static_assert(int(model::FdType::kEventfd) == pb::FD_EVENTFD);
static_assert(int(model::FdType::kSignalfd) == pb::FD_SIGNALFD);
static_assert(int(model::FdType::kTimerfd) == pb::FD_TIMERFD);
static_assert(int(model::FdType::kEpoll) == pb::FD_EPOLL);
static_assert(int(model::FdType::kUnixPair) == pb::FD_UNIX_PAIR);
static_assert(int(model::FdType::kUnixListen) == pb::FD_UNIX_LISTEN);
static_assert(int(model::FdType::kInotify) == pb::FD_INOTIFY);
static_assert(int(model::FdType::kUnixUnconnected) == pb::FD_UNIX_UNCONNECTED);
static_assert(int(model::FdType::kShmem) == pb::FD_SHMEM);
static_assert(int(model::FdType::kInet) == pb::FD_INET);
static_assert(int(model::FdType::kPtyMaster) == pb::FD_PTY_MASTER);
static_assert(int(model::FdType::kPtySlave) == pb::FD_PTY_SLAVE);
static_assert(int(model::FdType::kCallerTty) == pb::FD_CALLER_TTY);
static_assert(int(model::FdType::kUserfaultfd) == pb::FD_USERFAULTFD);
static_assert(int(model::LockKind::kFlock) == pb::LOCK_FLOCK);
static_assert(int(model::LockKind::kPosix) == pb::LOCK_POSIX);
static_assert(int(model::LockKind::kOfd) == pb::LOCK_OFD);

Result<std::string> EncodeFds(const model::Process& p) {
  pb::Fds m;
  m.set_pid(p.pid);
  for (const model::Fd& fd : p.fds) {
    pb::Fd* out = m.add_fds();
    out->set_fd(fd.fd);
    out->set_type(static_cast<pb::FdType>(fd.type));
    out->set_path(fd.path);
    out->set_flags(fd.flags);
    out->set_cloexec(fd.cloexec);
    out->set_pos(fd.pos);
    out->set_rdev(fd.rdev);
    FileIdToProto(fd.file, *out->mutable_file());
    if (fd.shares_with >= 0) out->set_shares_with(fd.shares_with);
    out->set_object_id(fd.object_id);
    out->set_shared_file(fd.shared_file);
    out->set_pipe_size(fd.pipe_size);
    out->set_data(fd.data);
    out->set_counter(fd.counter);
    out->set_signal_mask(fd.signal_mask);
    out->set_clockid(fd.clockid);
    out->set_value_ns(fd.value_ns);
    out->set_interval_ns(fd.interval_ns);
    out->set_kind_flags(fd.kind_flags);
    for (const model::EpollTarget& t : fd.epoll_targets) {
      pb::EpollTarget* o = out->add_epoll_targets();
      o->set_fd(t.fd);
      o->set_events(t.events);
      o->set_data(t.data);
      o->set_ino(t.ino);
    }
    out->set_peer_id(fd.peer_id);
    out->set_sock_type(fd.sock_type);
    for (const std::string& msg : fd.messages) out->add_messages(msg);
    for (const model::InotifyWatch& w : fd.watches) {
      pb::InotifyWatch* o = out->add_watches();
      o->set_wd(w.wd);
      o->set_mask(w.mask);
      o->set_path(w.path);
    }
    if (fd.type == model::FdType::kInet) InetToProto(fd.inet, *out->mutable_inet());
    for (const model::FileLock& l : fd.locks) {
      pb::FileLock* o = out->add_locks();
      o->set_kind(static_cast<pb::LockKind>(l.kind));
      o->set_write(l.write);
      o->set_start(l.start);
      o->set_end(l.end);
    }
    out->set_shmem_id(fd.shmem_id);
    out->set_uffd_features(fd.uffd_features);
    if (fd.tty != model::TtyState{}) TtyToProto(fd.tty, *out->mutable_tty());
  }
  return EncodeFile(Kind::kFds, m);
}

Status DecodeFds(std::string_view file, model::Process& p) {
  pb::Fds m;
  CRYO_TRYV(DecodeFile(file, Kind::kFds, m));
  CRYO_TRYV(CheckPid(m.pid(), p.pid));
  p.fds.clear();
  p.fds.reserve(m.fds_size());
  for (const pb::Fd& in : m.fds()) {
    // Proto3 enums are open: a stored number outside the enum arrives as is.
    if (!pb::FdType_IsValid(in.type())) {
      return MakeError(ErrorKind::kCorruptImage, "fd {}: unknown type {}", in.fd(), int(in.type()));
    }
    p.fds.push_back(model::Fd{.fd = in.fd(),
                              .type = static_cast<model::FdType>(in.type()),
                              .path = in.path(),
                              .flags = in.flags(),
                              .cloexec = in.cloexec(),
                              .pos = in.pos(),
                              .rdev = in.rdev(),
                              .file = FileIdFromProto(in.file()),
                              .shares_with = in.has_shares_with() ? in.shares_with() : -1,
                              .object_id = in.object_id(),
                              .pipe_size = in.pipe_size(),
                              .data = in.data(),
                              .counter = in.counter(),
                              .signal_mask = in.signal_mask(),
                              .clockid = in.clockid(),
                              .value_ns = in.value_ns(),
                              .interval_ns = in.interval_ns(),
                              .kind_flags = in.kind_flags(),
                              .epoll_targets = {},
                              .locks = {},
                              .peer_id = in.peer_id(),
                              .sock_type = in.sock_type(),
                              .messages = {in.messages().begin(), in.messages().end()},
                              .watches = {},
                              .shmem_id = in.shmem_id(),
                              .inet = {},
                              .tty = {},
                              .uffd_features = in.uffd_features(),
                              .shared_file = in.shared_file()});
    model::Fd& f = p.fds.back();
    for (const pb::EpollTarget& t : in.epoll_targets()) {
      f.epoll_targets.push_back({t.fd(), t.events(), t.data(), t.ino()});
    }
    for (const pb::InotifyWatch& w : in.watches())
      f.watches.push_back({w.wd(), w.mask(), w.path()});
    if (f.type == model::FdType::kInet) {
      f.inet = CRYO_TRY_CTX(InetFromProto(in.inet()), "fd {}", in.fd());
    }
    for (const pb::FileLock& l : in.locks()) {
      if (!pb::LockKind_IsValid(l.kind())) {
        return MakeError(ErrorKind::kCorruptImage, "fd {}: unknown lock kind {}", in.fd(),
                         int(l.kind()));
      }
      f.locks.push_back({static_cast<model::LockKind>(l.kind()), l.write(), l.start(), l.end()});
    }
    f.tty = TtyFromProto(in.tty());
  }
  return {};
}

}  // namespace cryo::image
