#include "dump/page_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <vector>

#include "base/io.h"
#include "base/log.h"
#include "base/stopwatch.h"
#include "base/unique_fd.h"
#include "mem/page_wire.h"

namespace cryo::dump {
namespace {

bool Covered(const std::vector<mem::PageRange>& ranges, uint64_t start, uint64_t end) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), start,
                             [](uint64_t a, const mem::PageRange& r) { return a < r.end; });
  return it != ranges.end() && it->start <= start && end <= it->end;
}

std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return "the peer";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return fmt::format("{}:{}", host, port);
}

void SendError(int fd, const std::string& msg) {
  auto f = mem::WireFrame::Of(mem::WireType::kError);
  f.len = msg.size();
  (void)mem::WireSend(fd, f, std::as_bytes(std::span(msg)));
}

}  // namespace

Status ServeLazyPages(int listener, const std::map<pid_t, std::vector<mem::PageRange>>& lazy,
                      ServeStats& stats) {
  UniqueFd conn(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.valid()) return ErrnoError("accept the lazy-pages daemon's connection");
  int one = 1;
  (void)::setsockopt(conn.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return ServeLazyPagesOn(conn.get(), lazy, stats);
}

Status ServeLazyPagesOn(int conn_fd, const std::map<pid_t, std::vector<mem::PageRange>>& lazy,
                        ServeStats& stats) {
  struct Borrowed {
    int fd;
    int get() const { return fd; }
  } conn{conn_fd};
  auto t0 = SteadyClock::now();
  std::string peer = PeerName(conn.get());
  log::Info("page server: {} connected", peer);
  std::map<pid_t, UniqueFd> mems;
  for (const auto& [pid, ranges] : lazy) {
    std::string path = fmt::format("/proc/{}/mem", pid);
    mems[pid].Reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!mems[pid].valid()) return ErrnoError("open {}", path);
  }
  auto hello = CRYO_TRY(mem::WireRecv(conn.get(), peer));
  if (!hello.Is(mem::WireType::kHello)) {
    SendError(conn.get(), "expected HELLO");
    return MakeError(ErrorKind::kCorruptImage, "page server: {} did not start with HELLO", peer);
  }
  auto reply = mem::WireFrame::Of(mem::WireType::kHello);
  CRYO_TRYV(mem::WireSend(conn.get(), reply));

  std::vector<std::byte> buf;
  for (;;) {
    auto f = CRYO_TRY(mem::WireRecv(conn.get(), peer));
    if (f.Is(mem::WireType::kDone)) break;
    if (!f.Is(mem::WireType::kGet)) {
      SendError(conn.get(), "expected GET or DONE");
      return MakeError(ErrorKind::kCorruptImage, "page server: unexpected message {} from {}",
                       f.type, peer);
    }
    auto it = lazy.find(f.pid);
    if (it == lazy.end() || f.addr + f.len < f.addr ||
        !Covered(it->second, f.addr, f.addr + f.len)) {
      std::string msg = fmt::format("pid {}: {:#x}-{:#x} is not a lazy range of this dump", f.pid,
                                    f.addr, f.addr + f.len);
      SendError(conn.get(), msg);
      return MakeError(ErrorKind::kInvalidArg, "page server: {} asked for {}", peer, msg);
    }
    buf.resize(f.len);
    CRYO_TRYV(PreadFull(mems[f.pid].get(), buf, f.addr, "memory of a frozen process"));
    auto data = mem::WireFrame::Of(mem::WireType::kData);
    data.pid = f.pid;
    data.addr = f.addr;
    data.len = f.len;
    CRYO_TRYV(mem::WireSend(conn.get(), data, buf));
    stats.requests++;
    stats.bytes += f.len;
  }
  stats.seconds = SecondsSince(t0);
  log::Info("page server: {} requests, {} bytes to {} in {:.3f} s", stats.requests, stats.bytes,
            peer, stats.seconds);
  return {};
}

}  // namespace cryo::dump
