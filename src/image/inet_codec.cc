#include "image/inet_codec.h"

#include <sys/socket.h>

#include <cstring>

namespace cryo::image {
namespace {

size_t AddrLen(int family) { return family == AF_INET6 ? 16 : 4; }

void TcpToProto(const model::TcpRepairState& in, pb::TcpRepair& out) {
  out.set_send_seq(in.send_seq);
  out.set_recv_seq(in.recv_seq);
  out.set_send_queue(in.send_queue);
  out.set_unsent(in.unsent);
  out.set_recv_queue(in.recv_queue);
  out.set_mss(in.mss);
  out.set_snd_wscale(in.snd_wscale);
  out.set_rcv_wscale(in.rcv_wscale);
  out.set_tcp_options(in.tcp_options);
  out.set_timestamp(in.timestamp);
  out.set_snd_wl1(in.snd_wl1);
  out.set_snd_wnd(in.snd_wnd);
  out.set_max_window(in.max_window);
  out.set_rcv_wnd(in.rcv_wnd);
  out.set_rcv_wup(in.rcv_wup);
}

model::TcpRepairState TcpFromProto(const pb::TcpRepair& in) {
  return model::TcpRepairState{.send_seq = in.send_seq(),
                               .recv_seq = in.recv_seq(),
                               .send_queue = in.send_queue(),
                               .unsent = in.unsent(),
                               .recv_queue = in.recv_queue(),
                               .mss = in.mss(),
                               .snd_wscale = in.snd_wscale(),
                               .rcv_wscale = in.rcv_wscale(),
                               .tcp_options = in.tcp_options(),
                               .timestamp = in.timestamp(),
                               .snd_wl1 = in.snd_wl1(),
                               .snd_wnd = in.snd_wnd(),
                               .max_window = in.max_window(),
                               .rcv_wnd = in.rcv_wnd(),
                               .rcv_wup = in.rcv_wup()};
}

Status AddrFromProto(const std::string& in, int family, std::array<uint8_t, 16>& out,
                     const char* which) {
  if (in.size() != AddrLen(family)) {
    return MakeError(ErrorKind::kCorruptImage, "{} address of {} bytes for family {}", which,
                     in.size(), family);
  }
  std::memcpy(out.data(), in.data(), in.size());
  return {};
}

}  // namespace

void InetToProto(const model::InetSocket& in, pb::InetSocket& out) {
  size_t len = AddrLen(in.family);
  out.set_family(in.family);
  out.set_protocol(in.protocol);
  out.set_state(in.state);
  out.set_local_addr(reinterpret_cast<const char*>(in.local_addr.data()), len);
  out.set_local_port(in.local_port);
  out.set_remote_addr(reinterpret_cast<const char*>(in.remote_addr.data()), len);
  out.set_remote_port(in.remote_port);
  out.set_bound(in.bound);
  out.set_backlog(in.backlog);
  out.set_options(in.options);
  out.set_sndbuf(in.sndbuf);
  out.set_rcvbuf(in.rcvbuf);
  TcpToProto(in.tcp, *out.mutable_tcp());
  out.set_lock_table(in.lock_table);
}

Result<model::InetSocket> InetFromProto(const pb::InetSocket& in) {
  model::InetSocket out;
  out.family = in.family();
  out.protocol = in.protocol();
  out.state = in.state();
  if (out.family != AF_INET && out.family != AF_INET6) {
    return MakeError(ErrorKind::kCorruptImage, "inet socket of family {}", out.family);
  }
  CRYO_TRYV(AddrFromProto(in.local_addr(), out.family, out.local_addr, "local"));
  CRYO_TRYV(AddrFromProto(in.remote_addr(), out.family, out.remote_addr, "remote"));
  out.local_port = in.local_port();
  out.remote_port = in.remote_port();
  out.bound = in.bound();
  out.backlog = in.backlog();
  out.options = in.options();
  out.sndbuf = in.sndbuf();
  out.rcvbuf = in.rcvbuf();
  out.tcp = TcpFromProto(in.tcp());
  out.lock_table = in.lock_table();
  return out;
}

}  // namespace cryo::image
