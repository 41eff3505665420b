// Terminal state of a pseudo-terminal master fd or of the caller's terminal (--shell-job).
// Plain values.
#pragma once

#include <cstdint>
#include <string>

namespace cryo::model {

struct TtyState {
  uint32_t index = 0;  // pts number at dump: pairs a master with its slave fds (not restored)
  // termios (TCGETS: speeds are part of cflag) and window size of the terminal.
  uint32_t iflag = 0, oflag = 0, cflag = 0, lflag = 0, line = 0;
  std::string cc;  // c_cc, 19 bytes
  uint32_t rows = 0, cols = 0, xpixel = 0, ypixel = 0;
  bool packet_mode = false;  // TIOCPKT on the master
  bool locked = false;       // TIOCSPTLCK: the slave cannot be opened
  // Bytes queued at dump, not restored (documented): slave input not yet read, master input
  // (the slave's output) not yet read.
  uint32_t queued_to_slave = 0, queued_to_master = 0;
  bool operator==(const TtyState&) const = default;
};

}  // namespace cryo::model
