#include "proc/text.h"

#include <algorithm>
#include <charconv>

namespace cryo::proc {

bool LineReader::Next(std::string_view* line) {
  if (rest_.empty()) return false;
  size_t nl = rest_.find('\n');
  if (nl == std::string_view::npos) {
    *line = rest_;
    rest_ = {};
  } else {
    *line = rest_.substr(0, nl);
    rest_.remove_prefix(nl + 1);
  }
  ++line_number_;
  return true;
}

size_t CountLines(std::string_view text) {
  size_t n = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  if (!text.empty() && text.back() != '\n') ++n;
  return n;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'; }

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view NextToken(std::string_view* s) {
  size_t begin = 0;
  while (begin < s->size() && IsSpace((*s)[begin])) ++begin;
  size_t end = begin;
  while (end < s->size() && !IsSpace((*s)[end])) ++end;
  std::string_view token = s->substr(begin, end - begin);
  s->remove_prefix(end);
  return token;
}

std::optional<uint64_t> ParseUint(std::string_view s, int base) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  if (s.empty() || s.front() == '+') return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::unexpected<Error> BadLine(std::string_view file, size_t line_number, std::string_view what,
                               std::string_view line) {
  constexpr size_t kMaxQuote = 160;
  std::string_view quoted = line.substr(0, kMaxQuote);
  return MakeError(ErrorKind::kInternal, "{} line {}: {}: \"{}{}\"", file, line_number, what,
                   quoted, line.size() > kMaxQuote ? "..." : "");
}

}  // namespace cryo::proc
