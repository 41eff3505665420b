#include "image/tty_codec.h"

#include <set>

namespace cryo::image {

namespace {
constexpr size_t kNccs = 19;  // c_cc of the kernel's struct termios
constexpr uint32_t kMaxWinsize = 0xffff;
}  // namespace

void TtyToProto(const model::TtyState& in, pb::Tty& out) {
  out.set_index(in.index);
  out.set_iflag(in.iflag);
  out.set_oflag(in.oflag);
  out.set_cflag(in.cflag);
  out.set_lflag(in.lflag);
  out.set_line(in.line);
  out.set_cc(in.cc);
  out.set_rows(in.rows);
  out.set_cols(in.cols);
  out.set_xpixel(in.xpixel);
  out.set_ypixel(in.ypixel);
  out.set_packet_mode(in.packet_mode);
  out.set_locked(in.locked);
  out.set_queued_to_slave(in.queued_to_slave);
  out.set_queued_to_master(in.queued_to_master);
}

model::TtyState TtyFromProto(const pb::Tty& in) {
  return {.index = in.index(),
          .iflag = in.iflag(),
          .oflag = in.oflag(),
          .cflag = in.cflag(),
          .lflag = in.lflag(),
          .line = in.line(),
          .cc = in.cc(),
          .rows = in.rows(),
          .cols = in.cols(),
          .xpixel = in.xpixel(),
          .ypixel = in.ypixel(),
          .packet_mode = in.packet_mode(),
          .locked = in.locked(),
          .queued_to_slave = in.queued_to_slave(),
          .queued_to_master = in.queued_to_master()};
}

Status ValidateTtyFds(const model::Process& p) {
  std::set<uint32_t> masters;
  for (const model::Fd& f : p.fds) {
    if (f.type != model::FdType::kPtyMaster || f.shares_with != -1) continue;
    if (!masters.insert(f.tty.index).second) {
      return MakeError(ErrorKind::kCorruptImage, "fd {}: a second pty master with index {}", f.fd,
                       f.tty.index);
    }
  }
  for (const model::Fd& f : p.fds) {
    bool has_state = f.type == model::FdType::kPtyMaster || f.type == model::FdType::kCallerTty;
    if (has_state && f.shares_with == -1) {
      if (f.tty.cc.size() != kNccs) {
        return MakeError(ErrorKind::kCorruptImage, "fd {}: {} termios control characters, not {}",
                         f.fd, f.tty.cc.size(), kNccs);
      }
      if (f.tty.rows > kMaxWinsize || f.tty.cols > kMaxWinsize || f.tty.xpixel > kMaxWinsize ||
          f.tty.ypixel > kMaxWinsize) {
        return MakeError(ErrorKind::kCorruptImage, "fd {}: window size out of range", f.fd);
      }
    }
    if (f.type == model::FdType::kPtySlave && !masters.contains(f.tty.index)) {
      return MakeError(ErrorKind::kCorruptImage, "fd {}: pty slave {} without its master", f.fd,
                       f.tty.index);
    }
  }
  return {};
}

}  // namespace cryo::image
