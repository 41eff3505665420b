// Logging: leveled lines to stderr and, if set, a log file. The level and file are set once by
// the CLI before any work starts; everything else only reads them.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace cryo::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// Configures the sink. `file_fd` < 0 means no log file. Not thread-safe; call once at start.
void Configure(Level level, int file_fd);
bool Enabled(Level level);
void Write(Level level, std::string_view line);

template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Warn(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kWarn)) Write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kInfo)) Write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Debug(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace cryo::log
