#include "restore/fd_tty.h"

#include <asm/termbits.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "base/io.h"

namespace cryo::restore {
namespace {

constexpr unsigned kPtsFirstMajor = 136, kPtsLastMajor = 143;
// File status flags F_SETFL can change; the access mode comes from the open.
constexpr int kStatusFlags = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;

Status SetTermState(int fd, const model::TtyState& t, bool winsize, std::string_view what) {
  struct termios tio {};
  if (::ioctl(fd, TCGETS, &tio) < 0) return ErrnoError("{}: TCGETS", what);
  tio.c_iflag = t.iflag;
  tio.c_oflag = t.oflag;
  tio.c_cflag = t.cflag;
  tio.c_lflag = t.lflag;
  tio.c_line = static_cast<cc_t>(t.line);
  std::memcpy(tio.c_cc, t.cc.data(), std::min(t.cc.size(), sizeof tio.c_cc));
  if (::ioctl(fd, TCSETS, &tio) < 0) return ErrnoError("{}: TCSETS", what);
  if (winsize) {
    struct winsize ws {
      static_cast<unsigned short>(t.rows), static_cast<unsigned short>(t.cols),
          static_cast<unsigned short>(t.xpixel), static_cast<unsigned short>(t.ypixel)
    };
    if (::ioctl(fd, TIOCSWINSZ, &ws) < 0) return ErrnoError("{}: TIOCSWINSZ", what);
  }
  return {};
}

Result<UniqueFd> Above(UniqueFd fd, int floor, std::string_view what) {
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, floor);
  if (moved < 0) return ErrnoError("{}: move above fd {}", what, floor);
  return UniqueFd(moved);
}

// The controlling terminal of this process (the session's), by its device number.
Result<std::string> ControllingTtyPath() {
  std::string text = CRYO_TRY(ReadWholeFile("/proc/self/stat"));
  size_t paren = text.rfind(')');
  std::istringstream in(paren == std::string::npos ? "" : text.substr(paren + 1));
  std::string state;
  long ppid = 0, pgrp = 0, session = 0;
  uint64_t nr = 0;
  if (!(in >> state >> ppid >> pgrp >> session >> nr)) {
    return MakeError(ErrorKind::kInternal, "/proc/self/stat: cannot read tty_nr");
  }
  if (nr == 0) return std::string();
  unsigned maj = (nr >> 8) & 0xfff, min = (nr & 0xff) | ((nr >> 12) & 0xfff00);
  if (maj >= kPtsFirstMajor && maj <= kPtsLastMajor) {
    return fmt::format("/dev/pts/{}", (maj - kPtsFirstMajor) * 256 + min);
  }
  return std::string("/dev/tty");  // the kernel redirects it to the controlling terminal
}

}  // namespace

Status CheckShellJob(const model::Process& p, bool shell_job) {
  for (const model::Fd& f : p.fds) {
    if (f.type != model::FdType::kCallerTty) continue;
    if (!shell_job) {
      return MakeError(ErrorKind::kInvalidArg,
                       "pid {}: fd {} was the controlling terminal {} of a shell job; restore "
                       "with --shell-job (-j)",
                       p.pid, f.fd, f.path);
    }
    std::string path = CRYO_TRY(ControllingTtyPath());
    if (path.empty()) {
      return MakeError(ErrorKind::kInvalidArg,
                       "--shell-job: cryo has no controlling terminal to give pid {}", p.pid);
    }
    return {};
  }
  return {};
}

Status PtySet::Create(uint32_t index) {
  const model::Fd* master = nullptr;
  for (const model::Fd& f : fds_) {
    if (f.type == model::FdType::kPtyMaster && f.shares_with == -1 && f.tty.index == index) {
      master = &f;
    }
  }
  if (master == nullptr) {
    return MakeError(ErrorKind::kCorruptImage, "pty slave {} without its master", index);
  }
  std::string what = fmt::format("fd {} (pty master {})", master->fd, index);
  UniqueFd m(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!m.valid()) return ErrnoError("{}: open /dev/ptmx", what);
  int unlock = 0;
  if (::ioctl(m.get(), TIOCSPTLCK, &unlock) < 0) return ErrnoError("{}: unlock", what);
  unsigned now = 0;
  if (::ioctl(m.get(), TIOCGPTN, &now) < 0) return ErrnoError("{}: TIOCGPTN", what);
  // No logging here: in the restore child the log file's fd number may by now be one of the
  // target's fds (even this master's).
  std::string slave_path = fmt::format("/dev/pts/{}", now);
  CRYO_TRYV(SetTermState(m.get(), master->tty, true, what));
  int pkt = master->tty.packet_mode ? 1 : 0;
  if (::ioctl(m.get(), TIOCPKT, &pkt) < 0) return ErrnoError("{}: TIOCPKT", what);
  // Every slave fd is opened now: a locked pty refuses later opens.
  for (const model::Fd& f : fds_) {
    if (f.type != model::FdType::kPtySlave || f.shares_with != -1 || f.tty.index != index) {
      continue;
    }
    int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC);
    UniqueFd s(::open(slave_path.c_str(), flags | O_NOCTTY | O_CLOEXEC));
    if (!s.valid()) return ErrnoError("fd {}: open {}", f.fd, slave_path);
    prepared_[f.fd] = CRYO_TRY(Above(std::move(s), floor_, what));
  }
  if (master->tty.locked) {
    int lock = 1;
    if (::ioctl(m.get(), TIOCSPTLCK, &lock) < 0) return ErrnoError("{}: lock", what);
  }
  int fl = static_cast<int>(master->flags) & kStatusFlags;
  if (::fcntl(m.get(), F_SETFL, fl) < 0) return ErrnoError("{}: set flags", what);
  prepared_[master->fd] = CRYO_TRY(Above(std::move(m), floor_, what));
  created_[index] = true;
  return {};
}

Result<UniqueFd> PtySet::Open(const model::Fd& f) {
  if (!created_.contains(f.tty.index)) CRYO_TRYV(Create(f.tty.index));
  auto it = prepared_.find(f.fd);
  if (it == prepared_.end()) {
    return MakeError(ErrorKind::kInternal, "fd {}: pty {} end not prepared", f.fd, f.tty.index);
  }
  UniqueFd out = std::move(it->second);
  prepared_.erase(it);
  return out;
}

Result<UniqueFd> OpenCallerTty(const model::Fd& f) {
  std::string path = CRYO_TRY(ControllingTtyPath());
  if (path.empty())
    return MakeError(ErrorKind::kInvalidArg, "fd {}: no controlling terminal", f.fd);
  int flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC);
  std::string what = fmt::format("fd {} (the terminal {})", f.fd, path);
  UniqueFd fd(::open(path.c_str(), flags | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("{}: open", what);
  // The window size is the restoring terminal's own; the modes are the program's (raw or not).
  CRYO_TRYV(SetTermState(fd.get(), f.tty, false, what));
  if (f.kind_flags & model::kTtyForeground) {
    pid_t pgrp = ::getpgrp();
    if (::ioctl(fd.get(), TIOCSPGRP, &pgrp) < 0) return ErrnoError("{}: make foreground", what);
  }
  return fd;
}

}  // namespace cryo::restore
