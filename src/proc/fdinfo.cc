#include "proc/fdinfo.h"

#include "proc/text.h"

namespace cryo::proc {
namespace {

// Splits "key: value" (see FdInfo::extra for the rule). Returns {key, value}.
std::pair<std::string_view, std::string_view> SplitKeyValue(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == ':' && (i + 1 == line.size() || IsSpace(line[i + 1]))) {
      return {TrimSpace(line.substr(0, i)), TrimSpace(line.substr(i + 1))};
    }
  }
  std::string_view rest = line;
  std::string_view word = NextToken(&rest);
  return {word, TrimSpace(rest)};
}

}  // namespace

const std::string* FdInfo::Find(std::string_view key) const {
  for (const auto& [k, v] : extra) {
    if (k == key) return &v;
  }
  return nullptr;
}

Result<FdInfo> ParseFdInfo(std::string_view text) {
  FdInfo info;
  bool has_pos = false, has_flags = false;
  LineReader lines(text);
  std::string_view line;
  while (lines.Next(&line)) {
    if (TrimSpace(line).empty()) continue;
    auto [key, value] = SplitKeyValue(line);
    auto bad = [&] { return BadLine("fdinfo", lines.line_number(), "bad value", line); };
    if (key == "pos") {
      // loff_t, printed signed: a few drivers use offsets past 2^63 that show as negative.
      auto v = ParseInt(value);
      if (!v) return bad();
      info.pos = static_cast<uint64_t>(*v);
      has_pos = true;
    } else if (key == "flags") {
      auto v = ParseUint(value, 8);
      if (!v || *v > UINT32_MAX) return bad();
      info.flags = static_cast<uint32_t>(*v);
      has_flags = true;
    } else if (key == "mnt_id") {
      auto v = ParseUint(value, 10);
      if (!v || *v > INT32_MAX) return bad();
      info.mnt_id = static_cast<int>(*v);
    } else if (key == "ino") {
      auto v = ParseUint(value, 10);
      if (!v) return bad();
      info.ino = *v;
    } else {
      info.extra.emplace_back(key, value);
    }
  }
  if (!has_pos || !has_flags) return MakeError(ErrorKind::kInternal, "fdinfo: no pos or flags");
  return info;
}

}  // namespace cryo::proc
