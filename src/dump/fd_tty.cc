#include "dump/fd_tty.h"

#include <asm/termbits.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#include <set>
#include <sstream>

#include "base/io.h"
#include "base/log.h"
#include "sys/syscalls.h"

namespace cryo::dump {
namespace {

constexpr unsigned kTtyMajor = 4, kTtyAuxMajor = 5, kPtmxMinor = 2;
constexpr unsigned kPtsFirstMajor = 136, kPtsLastMajor = 143;  // UNIX98_PTY_SLAVE_MAJOR + 7

bool IsPtsSlave(dev_t rdev) {
  return major(rdev) >= kPtsFirstMajor && major(rdev) <= kPtsLastMajor;
}

uint32_t PtsIndex(dev_t rdev) { return (major(rdev) - kPtsFirstMajor) * 256 + minor(rdev); }

// The kernel's encoding of a device in /proc/PID/stat tty_nr (new_encode_dev).
dev_t DecodeTtyNr(uint64_t nr) {
  return makedev(static_cast<unsigned>((nr >> 8) & 0xfff),
                 static_cast<unsigned>((nr & 0xff) | ((nr >> 12) & 0xfff00)));
}

struct StatTty {
  dev_t tty = 0;
  bool has_tty = false;
  pid_t pgrp = 0;
  pid_t tpgid = 0;  // foreground group of the controlling terminal, -1 without one
};

Result<StatTty> ReadStatTty(pid_t pid) {
  std::string text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/stat", pid)));
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) {
    return MakeError(ErrorKind::kInternal, "/proc/{}/stat: no ')'", pid);
  }
  std::istringstream in(text.substr(paren + 1));
  std::string state;
  long ppid = 0, pgrp = 0, session = 0, tpgid = 0;
  uint64_t tty_nr = 0;
  if (!(in >> state >> ppid >> pgrp >> session >> tty_nr >> tpgid)) {
    return MakeError(ErrorKind::kInternal, "/proc/{}/stat: cannot read tty fields", pid);
  }
  return StatTty{.tty = DecodeTtyNr(tty_nr),
                 .has_tty = tty_nr != 0,
                 .pgrp = static_cast<pid_t>(pgrp),
                 .tpgid = static_cast<pid_t>(tpgid)};
}

Status ReadTermState(int fd, std::string_view what, model::TtyState& t) {
  struct termios tio {};
  if (::ioctl(fd, TCGETS, &tio) < 0) return ErrnoError("{}: TCGETS", what);
  t.iflag = tio.c_iflag;
  t.oflag = tio.c_oflag;
  t.cflag = tio.c_cflag;
  t.lflag = tio.c_lflag;
  t.line = tio.c_line;
  t.cc.assign(reinterpret_cast<const char*>(tio.c_cc), NCCS);
  struct winsize ws {};
  if (::ioctl(fd, TIOCGWINSZ, &ws) < 0) return ErrnoError("{}: TIOCGWINSZ", what);
  t.rows = ws.ws_row;
  t.cols = ws.ws_col;
  t.xpixel = ws.ws_xpixel;
  t.ypixel = ws.ws_ypixel;
  return {};
}

Status ReadMasterState(int fd, std::string_view what, model::TtyState& t) {
  unsigned index = 0;
  if (::ioctl(fd, TIOCGPTN, &index) < 0) return ErrnoError("{}: TIOCGPTN", what);
  t.index = index;
  CRYO_TRYV(ReadTermState(fd, what, t));  // a master's termios calls act on its slave's tty
  int pkt = 0, lock = 0, queued = 0;
  if (::ioctl(fd, TIOCGPKT, &pkt) < 0) return ErrnoError("{}: TIOCGPKT", what);
  if (::ioctl(fd, TIOCGPTLCK, &lock) < 0) return ErrnoError("{}: TIOCGPTLCK", what);
  if (::ioctl(fd, FIONREAD, &queued) < 0) return ErrnoError("{}: FIONREAD", what);
  t.packet_mode = pkt != 0;
  t.locked = lock != 0;
  t.queued_to_master = static_cast<uint32_t>(queued);
  return {};
}

}  // namespace

bool IsTerminalDevice(dev_t rdev) {
  return IsPtsSlave(rdev) || major(rdev) == kTtyMajor ||
         (major(rdev) == kTtyAuxMajor && minor(rdev) <= kPtmxMinor);
}

Status CaptureTty(pid_t pid, dev_t rdev, model::Fd& out) {
  std::string what = fmt::format("pid {}: fd {} ({})", pid, out.fd, out.path);
  auto pidfd = CRYO_TRY(sys::PidfdOpen(pid));
  auto fd = CRYO_TRY_CTX(sys::PidfdGetfd(pidfd.get(), out.fd), "{}", what);
  out.rdev = rdev;
  if (major(rdev) == kTtyAuxMajor && minor(rdev) == kPtmxMinor) {
    out.type = model::FdType::kPtyMaster;
    CRYO_TRYV(ReadMasterState(fd.get(), what, out.tty));
    return {};
  }
  StatTty st = CRYO_TRY(ReadStatTty(pid));
  if (st.has_tty && st.tty == rdev) {
    out.type = model::FdType::kCallerTty;
    CRYO_TRYV(ReadTermState(fd.get(), what, out.tty));
    if (st.tpgid == st.pgrp) out.kind_flags |= model::kTtyForeground;
    return {};
  }
  if (IsPtsSlave(rdev)) {
    out.type = model::FdType::kPtySlave;
    out.tty.index = PtsIndex(rdev);
    int queued = 0;
    if (::ioctl(fd.get(), FIONREAD, &queued) < 0) return ErrnoError("{}: FIONREAD", what);
    out.tty.queued_to_slave = static_cast<uint32_t>(queued);
    return {};
  }
  if (out.fd <= 2) {
    // stdio on a terminal the process does not control: whoever started it owns it, as for
    // pipes; restore hands over its own stdio.
    out.type = model::FdType::kInherited;
    return {};
  }
  return MakeError(ErrorKind::kUnsupported,
                   "{}: a terminal that is neither a pty of the process nor its controlling "
                   "terminal is not supported",
                   what);
}

Status CheckTerminalFds(model::Process& p, bool shell_job) {
  std::set<uint32_t> masters;
  for (const model::Fd& f : p.fds) {
    if (f.type == model::FdType::kPtyMaster) masters.insert(f.tty.index);
  }
  for (model::Fd& f : p.fds) {
    if (f.type == model::FdType::kPtySlave && f.fd <= 2 && !masters.contains(f.tty.index)) {
      // stdio on someone else's pty (not its controlling terminal): inherited, like a pipe.
      f.type = model::FdType::kInherited;
      f.tty = {};
    }
  }
  for (const model::Fd& f : p.fds) {
    if (f.type == model::FdType::kCallerTty && !shell_job) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {}: fd {} is its controlling terminal {}; dump a shell job with "
                       "--shell-job (-j)",
                       p.pid, f.fd, f.path);
    }
    if (f.type == model::FdType::kPtySlave && !masters.contains(f.tty.index)) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {}: fd {} is pty slave {} whose master is not in the process", p.pid,
                       f.fd, f.path);
    }
  }
  for (const model::Fd& f : p.fds) {
    uint32_t queued = f.tty.queued_to_master + f.tty.queued_to_slave;
    if ((f.type == model::FdType::kPtyMaster || f.type == model::FdType::kPtySlave) &&
        queued != 0) {
      log::Warn("pid {}: fd {} ({}): {} bytes queued in the terminal are not kept", p.pid, f.fd,
                f.path, queued);
    }
  }
  return {};
}

}  // namespace cryo::dump
