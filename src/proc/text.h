// Small scanning helpers shared by the /proc parsers: line iteration, whitespace tokens, integer
// fields in a given base, and the one shape of error every parser returns for a bad line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "base/error.h"

namespace cryo::proc {

// Yields the lines of `text` without their '\n'; a final line without '\n' is still a line.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : rest_(text) {}
  // Stores the next line in *line and returns true, or returns false at the end of the text.
  bool Next(std::string_view* line);
  // 1-based number of the line last returned by Next().
  size_t line_number() const { return line_number_; }

 private:
  std::string_view rest_;
  size_t line_number_ = 0;
};

// Counts '\n' (plus one for an unterminated last line): a cheap upper bound for reserve().
size_t CountLines(std::string_view text);

bool IsSpace(char c);
std::string_view TrimSpace(std::string_view s);
// Skips leading blanks of *s, returns the token up to the next blank (or the end) and leaves *s
// just after it. Returns an empty view when *s holds only blanks.
std::string_view NextToken(std::string_view* s);

// The whole of `s` as an unsigned number in `base` (no sign, no prefix, no blanks); nullopt when
// `s` is empty, has another character, or overflows.
std::optional<uint64_t> ParseUint(std::string_view s, int base = 10);
// Same for an optionally '-'-signed decimal.
std::optional<int64_t> ParseInt(std::string_view s);

// The error every parser returns for text it cannot read: kInternal (the kernel wrote something
// we do not understand, which is our bug or a format change), naming the file kind, the 1-based
// line number and quoting the line (cut at 160 characters).
std::unexpected<Error> BadLine(std::string_view file, size_t line_number, std::string_view what,
                               std::string_view line);

}  // namespace cryo::proc
