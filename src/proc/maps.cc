#include "proc/maps.h"

#include "proc/text.h"

namespace cryo::proc {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";
constexpr std::string_view kEscapedNewline = "\\012";

// The kernel's seq_file_path(..., "\n") turns each '\n' of a path into "\012" and leaves every
// other byte (including '\\') alone.
std::string UnescapePath(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  size_t pos = 0;
  for (;;) {
    size_t hit = raw.find(kEscapedNewline, pos);
    if (hit == std::string_view::npos) break;
    out.append(raw.substr(pos, hit - pos));
    out.push_back('\n');
    pos = hit + kEscapedNewline.size();
  }
  out.append(raw.substr(pos));
  return out;
}

std::unexpected<Error> Bad(std::string_view what) {
  return MakeError(ErrorKind::kInternal, "{}", what);
}

bool ParsePerms(std::string_view perms, MapsEntry* e) {
  if (perms.size() != 4) return false;
  auto flag = [](char c, char set, bool* out) {
    if (c != set && c != '-') return false;
    *out = c == set;
    return true;
  };
  if (!flag(perms[0], 'r', &e->read) || !flag(perms[1], 'w', &e->write) ||
      !flag(perms[2], 'x', &e->exec)) {
    return false;
  }
  if (perms[3] != 'p' && perms[3] != 's') return false;
  e->shared = perms[3] == 's';
  return true;
}

}  // namespace

Result<MapsEntry> ParseMapsLine(std::string_view line) {
  MapsEntry e;
  std::string_view rest = line;

  std::string_view range = NextToken(&rest);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) return Bad("no address range");
  auto start = ParseUint(range.substr(0, dash), 16);
  auto end = ParseUint(range.substr(dash + 1), 16);
  if (!start || !end) return Bad("bad address range");
  if (*start >= *end) return Bad("empty or reversed address range");
  e.start = *start;
  e.end = *end;

  if (!ParsePerms(NextToken(&rest), &e)) return Bad("bad permissions");

  auto offset = ParseUint(NextToken(&rest), 16);
  if (!offset) return Bad("bad offset");
  e.offset = *offset;

  std::string_view dev = NextToken(&rest);
  size_t colon = dev.find(':');
  if (colon == std::string_view::npos) return Bad("bad device");
  auto major = ParseUint(dev.substr(0, colon), 16);
  auto minor = ParseUint(dev.substr(colon + 1), 16);
  if (!major || !minor || *major > UINT32_MAX || *minor > UINT32_MAX) return Bad("bad device");
  e.dev_major = static_cast<uint32_t>(*major);
  e.dev_minor = static_cast<uint32_t>(*minor);

  auto inode = ParseUint(NextToken(&rest), 10);
  if (!inode) return Bad("bad inode");
  e.inode = *inode;

  // The kernel pads with spaces up to the path column; the path itself runs to the end of the
  // line (it may contain or end with blanks, so nothing is trimmed after it).
  if (!rest.empty() && rest.front() != ' ') return Bad("no blank before path");
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (e.inode != 0 && rest.ends_with(kDeletedSuffix)) {
    rest.remove_suffix(kDeletedSuffix.size());
    e.deleted = true;
  }
  e.path = UnescapePath(rest);
  return e;
}

Result<std::vector<MapsEntry>> ParseMaps(std::string_view text) {
  std::vector<MapsEntry> out;
  out.reserve(CountLines(text));
  LineReader lines(text);
  std::string_view line;
  while (lines.Next(&line)) {
    auto e = ParseMapsLine(line);
    if (!e) return BadLine("maps", lines.line_number(), e.error().Message(), line);
    out.push_back(std::move(*e));
  }
  return out;
}

}  // namespace cryo::proc
