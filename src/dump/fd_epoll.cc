#include "dump/fd_kinds.h"
#include "proc/text.h"

namespace cryo::dump {
namespace {

// "<fd> events: <hex> data: <hex> pos:<n> ino:<hex> sdev:<hex>", the value of one "tfd" line.
Result<model::EpollTarget> ParseTarget(std::string_view line, int epoll_fd) {
  auto bad = [&] {
    return MakeError(ErrorKind::kInternal, "epoll fd {}: cannot read fdinfo line 'tfd: {}'",
                     epoll_fd, line);
  };
  std::string_view rest = line;
  auto fd = proc::ParseUint(proc::NextToken(&rest));
  if (!fd || proc::NextToken(&rest) != "events:") return bad();
  auto events = proc::ParseUint(proc::NextToken(&rest), 16);
  if (!events || proc::NextToken(&rest) != "data:") return bad();
  auto data = proc::ParseUint(proc::NextToken(&rest), 16);
  std::optional<uint64_t> ino;
  for (std::string_view tok = proc::NextToken(&rest); !tok.empty(); tok = proc::NextToken(&rest)) {
    if (tok.starts_with("ino:")) ino = proc::ParseUint(tok.substr(4), 16);
  }
  if (!data || !ino) return bad();
  return model::EpollTarget{static_cast<int32_t>(*fd), static_cast<uint32_t>(*events), *data, *ino};
}

}  // namespace

Status CaptureEpoll(const proc::FdInfo& info, model::Fd& out) {
  for (const auto& [key, value] : info.extra) {
    if (key != "tfd") continue;
    out.epoll_targets.push_back(CRYO_TRY(ParseTarget(value, out.fd)));
  }
  return {};
}

Status CheckEpollTargets(pid_t pid, const std::vector<model::Fd>& fds,
                         const std::vector<uint64_t>& inodes) {
  for (const model::Fd& f : fds) {
    for (const model::EpollTarget& t : f.epoll_targets) {
      size_t i = 0;
      while (i < fds.size() && fds[i].fd != t.fd) i++;
      if (i == fds.size() || inodes[i] != t.ino) {
        return MakeError(ErrorKind::kUnsupported,
                         "pid {}: epoll fd {} watches a file through fd {}, which is now closed "
                         "or another file; not supported",
                         pid, f.fd, t.fd);
      }
    }
  }
  return {};
}

}  // namespace cryo::dump
