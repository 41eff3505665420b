#include "mem/page_wire.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "base/io.h"

namespace cryo::mem {
namespace {

struct Address {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

Result<Address> ParseAddress(const std::string& host, uint16_t port) {
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof *v6;
  } else {
    return MakeError(ErrorKind::kInvalidArg, "'{}' is not an IPv4 or IPv6 address", host);
  }
  return a;
}

void NoDelay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Status SendAll(int fd, const void* p, size_t len) {
  const auto* b = static_cast<const std::byte*>(p);
  while (len > 0) {
    ssize_t n = ::send(fd, b, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("page-server connection: send");
    b += n;
    len -= static_cast<size_t>(n);
  }
  return {};
}

Status RecvAll(int fd, void* p, size_t len, const std::string& peer) {
  auto* b = static_cast<std::byte*>(p);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::recv(fd, b + done, len - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("page-server connection with {}: receive", peer);
    if (n == 0) {
      return MakeError(ErrorKind::kInternal,
                       "page-server connection with {} closed ({} of {} bytes)", peer, done, len);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

Result<UniqueFd> WireConnect(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos || colon + 1 == host_port.size()) {
    return MakeError(ErrorKind::kInvalidArg, "'{}' is not ADDRESS:PORT", host_port);
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  char* end = nullptr;
  unsigned long port = std::strtoul(host_port.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port == 0 || port > 65535) {
    return MakeError(ErrorKind::kInvalidArg, "'{}': bad port", host_port);
  }
  Address a = CRYO_TRY(ParseAddress(host, static_cast<uint16_t>(port)));
  UniqueFd fd(::socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a.ss), a.len) < 0) {
    return ErrnoError("connect to the page server at {}", host_port);
  }
  NoDelay(fd.get());
  return fd;
}

Result<UniqueFd> WireListen(const std::string& address, uint16_t port) {
  Address a = CRYO_TRY(ParseAddress(address, port));
  UniqueFd fd(::socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a.ss), a.len) < 0) {
    return ErrnoError("bind the page server to {} port {}", address, port);
  }
  if (::listen(fd.get(), 4) < 0) return ErrnoError("listen on {} port {}", address, port);
  return fd;
}

Status WireSend(int fd, const WireFrame& f, std::span<const std::byte> payload) {
  // Frame and payload in one call: sent apart, the payload would wait for the frame's ACK
  // (Nagle), which the peer delays (40 ms a request).
  iovec iov[2] = {{const_cast<WireFrame*>(&f), sizeof f},
                  {const_cast<std::byte*>(payload.data()), payload.size()}};
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = payload.empty() ? 1 : 2;
  ssize_t n;
  do {
    n = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("page-server connection: send");
  auto sent = static_cast<size_t>(n);
  if (sent < sizeof f) {
    CRYO_TRYV(SendAll(fd, reinterpret_cast<const std::byte*>(&f) + sent, sizeof f - sent));
    sent = sizeof f;
  }
  size_t done = sent - sizeof f;
  if (done < payload.size()) CRYO_TRYV(SendAll(fd, payload.data() + done, payload.size() - done));
  return {};
}

Result<WireFrame> WireRecv(int fd, const std::string& peer) {
  WireFrame f;
  CRYO_TRYV(RecvAll(fd, &f, sizeof f, peer));
  auto bad = [&](std::string_view what) {
    return MakeError(ErrorKind::kCorruptImage, "page-server message from {}: {}", peer, what);
  };
  if (f.magic != kWireMagic) return bad("not the cryo page-server protocol (bad magic)");
  if (f.version != kWireVersion) {
    return bad(fmt::format("protocol version {}, this cryo speaks {}", f.version, kWireVersion));
  }
  switch (static_cast<WireType>(f.type)) {
    case WireType::kHello:
    case WireType::kDone:
    case WireType::kFileEnd:
    case WireType::kRestore:
      if (f.len != 0) return bad("payload on a frame that has none");
      return f;
    case WireType::kFileBegin:
      if (f.len == 0 || f.len > 255) return bad("file name of bad length");
      return f;
    case WireType::kFileData:
      if (f.len == 0 || f.len > kWireMaxPayload) return bad("file data of bad length");
      return f;
    case WireType::kGet:
    case WireType::kData:
      if (f.len == 0 || f.len > kWireMaxPayload || f.len % 4096 != 0 || f.addr % 4096 != 0) {
        return bad(fmt::format("{} bytes at {:#x}: not whole pages up to {} bytes", f.len, f.addr,
                               kWireMaxPayload));
      }
      return f;
    case WireType::kError: {
      if (f.len > 4096) return bad("error message too long");
      std::string msg(f.len, '\0');
      CRYO_TRYV(RecvAll(fd, msg.data(), msg.size(), peer));
      return MakeError(ErrorKind::kInternal, "{} reports: {}", peer, msg);
    }
  }
  return bad(fmt::format("unknown message type {}", f.type));
}

Status WireSendDir(int fd, const std::string& dir, const std::string& prefix,
                   bool (*skip)(const std::string& name)) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoError("open {}", dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || (skip != nullptr && skip(n))) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
      names.push_back(n);
    }
  }
  ::closedir(d);
  std::vector<std::byte> buf(1 << 20);
  for (const std::string& n : names) {
    UniqueFd in(::open((dir + "/" + n).c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) return ErrnoError("open {}/{}", dir, n);
    struct stat st {};
    if (::fstat(in.get(), &st) < 0) return ErrnoError("stat {}/{}", dir, n);
    std::string name = prefix + "/" + n;
    auto f = WireFrame::Of(WireType::kFileBegin);
    f.addr = static_cast<uint64_t>(st.st_size);
    f.len = name.size();
    CRYO_TRYV(WireSend(fd, f, std::as_bytes(std::span(name))));
    for (uint64_t off = 0; off < static_cast<uint64_t>(st.st_size);) {
      size_t want = std::min<uint64_t>(buf.size(), static_cast<uint64_t>(st.st_size) - off);
      CRYO_TRYV(PreadFull(in.get(), {buf.data(), want}, off, name));
      auto chunk = WireFrame::Of(WireType::kFileData);
      chunk.addr = off;
      chunk.len = want;
      CRYO_TRYV(WireSend(fd, chunk, {buf.data(), want}));
      off += want;
    }
    auto e = WireFrame::Of(WireType::kFileEnd);
    CRYO_TRYV(WireSend(fd, e));
  }
  return {};
}

bool WireSafeName(const std::string& name) {
  size_t parts = 0, start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
        return false;
      }
    }
    parts++;
    start = end + 1;
  }
  return parts >= 1 && parts <= 2;
}

Status WireRecvPayload(int fd, std::span<std::byte> out, const std::string& peer) {
  return RecvAll(fd, out.data(), out.size(), peer);
}

Status WireHello(int fd, bool first, const std::string& peer) {
  auto h = WireFrame::Of(WireType::kHello);
  if (first) CRYO_TRYV(WireSend(fd, h));
  auto r = CRYO_TRY(WireRecv(fd, peer));
  if (!r.Is(WireType::kHello)) {
    return MakeError(ErrorKind::kCorruptImage, "{} did not start with HELLO", peer);
  }
  if (!first) CRYO_TRYV(WireSend(fd, h));
  return {};
}

}  // namespace cryo::mem
