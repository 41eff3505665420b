// fds-<pid>.img ⇄ a process's open file descriptors.
#include "image/codec.h"
#include "image/codec_util.h"
#include "image/cryo.pb.h"
#include "image/image_file.h"

namespace cryo::image {

static_assert(int(model::FdType::kRegular) == pb::FD_REGULAR);
static_assert(int(model::FdType::kDirectory) == pb::FD_DIRECTORY);
static_assert(int(model::FdType::kCharDevice) == pb::FD_CHAR_DEVICE);
static_assert(int(model::FdType::kInherited) == pb::FD_INHERITED);

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
                              .shares_with = in.has_shares_with() ? in.shares_with() : -1});
  }
  return {};
}

}  // namespace cryo::image
