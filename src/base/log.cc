#include "base/log.h"

#include <time.h>
#include <unistd.h>

#include <string>

namespace cryo::log {
namespace {
// The one piece of process-wide state: written once by Configure() before any work.
struct Sink {
  Level level = Level::kWarn;
  int file_fd = -1;
};
Sink g_sink;

const char* Tag(Level level) {
  switch (level) {
    case Level::kError:
      return "error";
    case Level::kWarn:
      return "warn";
    case Level::kInfo:
      return "info";
    case Level::kDebug:
      return "debug";
  }
  return "?";
}
}  // namespace

void Configure(Level level, int file_fd) {
  g_sink.level = level;
  g_sink.file_fd = file_fd;
}

bool Enabled(Level level) {
  return static_cast<int>(level) <= static_cast<int>(g_sink.level) || g_sink.file_fd >= 0;
}

void Write(Level level, std::string_view line) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  std::string text = fmt::format("({:5d}.{:06d}) cryo[{}] {}: {}\n", ts.tv_sec % 100000,
                                 ts.tv_nsec / 1000, getpid(), Tag(level), line);
  if (static_cast<int>(level) <= static_cast<int>(g_sink.level)) {
    (void)!::write(STDERR_FILENO, text.data(), text.size());
  }
  if (g_sink.file_fd >= 0) (void)!::write(g_sink.file_fd, text.data(), text.size());
}

}  // namespace cryo::log
