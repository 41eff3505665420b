#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "restore/fd_kinds.h"
#include "sys/netlock.h"

namespace cryo::restore {
namespace {

// TCP option kinds TCP_REPAIR_OPTIONS takes (RFC 793, 7323, 2018).
constexpr uint32_t kOptMss = 2;
constexpr uint32_t kOptWindow = 3;
constexpr uint32_t kOptSackPerm = 4;
constexpr uint32_t kOptTimestamp = 8;

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

Addr MakeAddr(int family, const std::array<uint8_t, 16>& addr, uint32_t port) {
  Addr a;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&in->sin_addr, addr.data(), 4);
    a.len = sizeof *in;
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&in6->sin6_addr, addr.data(), 16);
    a.len = sizeof *in6;
  }
  return a;
}

Status SetInt(int sock, int level, int name, int value, int fd, const char* what) {
  if (::setsockopt(sock, level, name, &value, sizeof value) < 0) {
    return ErrnoError("fd {}: set {} to {}", fd, what, value);
  }
  return {};
}

// Options that matter before bind (reuse, v6only) and after (the rest) are all set here, before.
Status SetOptions(int sock, const model::Fd& f) {
  const model::InetSocket& s = f.inet;
  auto on = [&](uint32_t bit) { return (s.options & bit) ? 1 : 0; };
  CRYO_TRYV(
      SetInt(sock, SOL_SOCKET, SO_REUSEADDR, on(model::kInetReuseAddr), f.fd, "SO_REUSEADDR"));
  CRYO_TRYV(
      SetInt(sock, SOL_SOCKET, SO_REUSEPORT, on(model::kInetReusePort), f.fd, "SO_REUSEPORT"));
  CRYO_TRYV(
      SetInt(sock, SOL_SOCKET, SO_KEEPALIVE, on(model::kInetKeepAlive), f.fd, "SO_KEEPALIVE"));
  CRYO_TRYV(
      SetInt(sock, SOL_SOCKET, SO_BROADCAST, on(model::kInetBroadcast), f.fd, "SO_BROADCAST"));
  if (s.protocol == IPPROTO_TCP) {
    CRYO_TRYV(SetInt(sock, IPPROTO_TCP, TCP_NODELAY, on(model::kInetNoDelay), f.fd, "TCP_NODELAY"));
  }
  if (s.family == AF_INET6) {
    CRYO_TRYV(SetInt(sock, IPPROTO_IPV6, IPV6_V6ONLY, on(model::kInetV6Only), f.fd, "IPV6_V6ONLY"));
  }
  // getsockopt shows twice what setsockopt was given; FORCE passes net.core.*mem_max as the
  // original setting may have (it was made by the process, possibly privileged, or grown by the
  // kernel's autotuning).
  if (s.options & model::kInetSndBufSet) {
    CRYO_TRYV(SetInt(sock, SOL_SOCKET, SO_SNDBUFFORCE, static_cast<int>(s.sndbuf / 2), f.fd,
                     "SO_SNDBUFFORCE"));
  }
  if (s.options & model::kInetRcvBufSet) {
    CRYO_TRYV(SetInt(sock, SOL_SOCKET, SO_RCVBUFFORCE, static_cast<int>(s.rcvbuf / 2), f.fd,
                     "SO_RCVBUFFORCE"));
  }
  return {};
}

// The port was the process's at dump; connections of the old socket may linger in TIME_WAIT on
// it, which SO_REUSEADDR lets a new bind pass (it still fails against a live listener). The
// option is put back as the process had it. In repair mode the kernel forces reuse by itself
// (a connection shares its port with the listener it was accepted from), and setting the option
// would undo that: `repair` leaves it alone until after the bind.
Status BindLocal(int sock, const model::Fd& f, bool repair) {
  const model::InetSocket& s = f.inet;
  Addr a = MakeAddr(s.family, s.local_addr, s.local_port);
  if (!repair) CRYO_TRYV(SetInt(sock, SOL_SOCKET, SO_REUSEADDR, 1, f.fd, "SO_REUSEADDR"));
  if (::bind(sock, reinterpret_cast<sockaddr*>(&a.ss), a.len) < 0) {
    return ErrnoError(
        "fd {}: bind {}", f.fd,
        sys::FormatEndpoint(s.family, s.local_addr, static_cast<uint16_t>(s.local_port)));
  }
  return SetInt(sock, SOL_SOCKET, SO_REUSEADDR, (s.options & model::kInetReuseAddr) ? 1 : 0, f.fd,
                "SO_REUSEADDR");
}

Status SetQueueSeq(int sock, int queue, uint32_t seq, int fd) {
  CRYO_TRYV(SetInt(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue, fd, "TCP_REPAIR_QUEUE"));
  if (::setsockopt(sock, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, sizeof seq) < 0) {
    return ErrnoError("fd {}: set sequence number of queue {}", fd, queue);
  }
  return {};
}

// In repair mode a send fills the selected queue: the receive queue as if the bytes had
// arrived, the send queue as if they had been sent (retransmitted later if unacknowledged).
Status FillQueue(int sock, int queue, const std::string& data, int fd) {
  if (data.empty()) return {};
  CRYO_TRYV(SetInt(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue, fd, "TCP_REPAIR_QUEUE"));
  constexpr size_t kChunk = 64 * 1024;
  for (size_t off = 0; off < data.size();) {
    size_t n = std::min(kChunk, data.size() - off);
    ssize_t w = ::send(sock, data.data() + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w <= 0)
      return ErrnoError("fd {}: refill queue {} at byte {} of {}", fd, queue, off, data.size());
    off += static_cast<size_t>(w);
  }
  return {};
}

// The connection comes back in repair mode: bound and "connected" without a packet, the
// sequence numbers, queues, negotiated options and windows as dumped. The parent takes it out of
// repair mode once the process is complete (restore/inet.h).
Status RepairConnection(int sock, const model::Fd& f) {
  const model::InetSocket& s = f.inet;
  const model::TcpRepairState& t = s.tcp;
  CRYO_TRYV(SetInt(sock, IPPROTO_TCP, TCP_REPAIR, 1, f.fd, "TCP_REPAIR"));
  uint32_t send_start = t.send_seq - static_cast<uint32_t>(t.send_queue.size());
  uint32_t recv_start = t.recv_seq - static_cast<uint32_t>(t.recv_queue.size());
  CRYO_TRYV(SetQueueSeq(sock, TCP_SEND_QUEUE, send_start, f.fd));
  CRYO_TRYV(SetQueueSeq(sock, TCP_RECV_QUEUE, recv_start, f.fd));
  if (t.tcp_options & model::kTcpTimestamps) {
    CRYO_TRYV(SetInt(sock, IPPROTO_TCP, TCP_TIMESTAMP, static_cast<int>(t.timestamp), f.fd,
                     "TCP_TIMESTAMP"));
  }
  CRYO_TRYV(BindLocal(sock, f, true));
  Addr peer = MakeAddr(s.family, s.remote_addr, s.remote_port);
  if (::connect(sock, reinterpret_cast<sockaddr*>(&peer.ss), peer.len) < 0) {
    return ErrnoError(
        "fd {}: connect in repair mode to {}", f.fd,
        sys::FormatEndpoint(s.family, s.remote_addr, static_cast<uint16_t>(s.remote_port)));
  }
  tcp_repair_opt opts[4];
  unsigned n = 0;
  opts[n++] = {kOptMss, t.mss};
  if (t.tcp_options & model::kTcpWindowScale) {
    opts[n++] = {kOptWindow, t.snd_wscale | (t.rcv_wscale << 16)};
  }
  if (t.tcp_options & model::kTcpSack) opts[n++] = {kOptSackPerm, 0};
  if (t.tcp_options & model::kTcpTimestamps) opts[n++] = {kOptTimestamp, 0};
  if (::setsockopt(sock, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, n * sizeof opts[0]) < 0) {
    return ErrnoError("fd {}: set negotiated TCP options", f.fd);
  }
  CRYO_TRYV(FillQueue(sock, TCP_RECV_QUEUE, t.recv_queue, f.fd));
  CRYO_TRYV(FillQueue(sock, TCP_SEND_QUEUE, t.send_queue, f.fd));
  CRYO_TRYV(SetInt(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, f.fd, "TCP_REPAIR_QUEUE"));
  tcp_repair_window w{t.snd_wl1, t.snd_wnd, t.max_window, t.rcv_wnd, t.rcv_wup};
  if (::setsockopt(sock, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof w) < 0) {
    return ErrnoError("fd {}: set TCP windows", f.fd);
  }
  return {};
}

}  // namespace

Result<UniqueFd> OpenInetSocket(const model::Fd& f) {
  const model::InetSocket& s = f.inet;
  int type = s.protocol == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
  UniqueFd sock(::socket(s.family, type | SOCK_CLOEXEC, s.protocol));
  if (!sock.valid()) return ErrnoError("fd {}: socket family {} type {}", f.fd, s.family, type);
  CRYO_TRYV(SetOptions(sock.get(), f));
  bool connection = s.protocol == IPPROTO_TCP && s.state == TCP_ESTABLISHED;
  if (connection) {
    CRYO_TRYV(RepairConnection(sock.get(), f));
  } else {
    if (s.bound) CRYO_TRYV(BindLocal(sock.get(), f, false));
    if (s.protocol == IPPROTO_TCP && s.state == TCP_LISTEN &&
        ::listen(sock.get(), static_cast<int>(s.backlog)) < 0) {
      return ErrnoError("fd {}: listen", f.fd);
    }
    if (s.protocol == IPPROTO_UDP && s.remote_port != 0) {
      Addr peer = MakeAddr(s.family, s.remote_addr, s.remote_port);
      if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&peer.ss), peer.len) < 0) {
        return ErrnoError("fd {}: connect UDP socket", f.fd);
      }
    }
  }
  if (::fcntl(sock.get(), F_SETFL, static_cast<int>(f.flags) & ~O_ACCMODE) < 0) {
    return ErrnoError("fd {}: set flags {:#o}", f.fd, f.flags);
  }
  return sock;
}

}  // namespace cryo::restore
