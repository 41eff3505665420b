// Inet sockets in fds-<pid>.img: a round trip keeps every field; hostile values are refused.
#include "image/inet_codec.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "image/codec.h"
#include "image/validate.h"

namespace cryo::image {
namespace {

model::Fd Connection() {
  model::Fd f;
  f.fd = 5;
  f.type = model::FdType::kInet;
  f.flags = 02 | 04000;
  model::InetSocket& s = f.inet;
  s.family = AF_INET6;
  s.protocol = IPPROTO_TCP;
  s.state = TCP_ESTABLISHED;
  s.local_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  s.local_port = 6379;
  s.remote_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  s.remote_port = 40000;
  s.bound = true;
  s.options = model::kInetNoDelay | model::kInetV6Only;
  s.sndbuf = 87040;
  s.rcvbuf = 131072;
  s.keep_idle = 300;
  s.keep_intvl = 100;
  s.keep_cnt = 3;
  s.tcp = {.send_seq = 0xfffffff0u,
           .recv_seq = 7,
           .send_queue = std::string("unacked\0bytes", 13),
           .unsent = 5,
           .recv_queue = "unread",
           .mss = 65483,
           .snd_wscale = 7,
           .rcv_wscale = 7,
           .tcp_options = model::kTcpSack | model::kTcpTimestamps | model::kTcpWindowScale,
           .timestamp = 123456,
           .snd_wl1 = 1,
           .snd_wnd = 2,
           .max_window = 3,
           .rcv_wnd = 4,
           .rcv_wup = 5};
  s.lock_table = "cryo_42_0badf00d";
  return f;
}

TEST(InetCodec, RoundTripKeepsEveryField) {
  model::Process p;
  p.pid = 42;
  p.fds.push_back(Connection());
  model::Fd udp;
  udp.fd = 6;
  udp.type = model::FdType::kInet;
  udp.inet.family = AF_INET;
  udp.inet.protocol = IPPROTO_UDP;
  udp.inet.state = TCP_CLOSE;
  udp.inet.local_addr = {127, 0, 0, 1};
  udp.inet.local_port = 53;
  udp.inet.bound = true;
  p.fds.push_back(udp);
  auto bytes = EncodeFds(p);
  ASSERT_TRUE(bytes) << bytes.error().Message();
  model::Process back;
  back.pid = 42;
  auto s = DecodeFds(*bytes, back);
  ASSERT_TRUE(s) << s.error().Message();
  EXPECT_EQ(back.fds, p.fds);
  for (const model::Fd& f : back.fds) EXPECT_TRUE(ValidateInetFd(f)) << f.fd;
}

TEST(InetCodec, AddressOfTheWrongLengthIsCorrupt) {
  pb::InetSocket m;
  InetToProto(Connection().inet, m);
  m.set_local_addr(std::string(4, '\0'));  // IPv4 length on an IPv6 socket
  auto r = InetFromProto(m);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::kCorruptImage);
  m.set_local_addr(std::string(16, '\0'));
  m.set_family(AF_UNIX);
  EXPECT_FALSE(InetFromProto(m));
}

void ExpectRejected(model::Fd f, const std::string& what) {
  auto s = ValidateInetFd(f);
  ASSERT_FALSE(s) << "accepted; expected: " << what;
  EXPECT_EQ(s.error().kind(), ErrorKind::kCorruptImage);
  EXPECT_NE(s.error().Message().find(what), std::string::npos) << s.error().Message();
}

TEST(ValidateInet, HostileValuesAreRefused) {
  model::Fd f = Connection();
  f.inet.protocol = IPPROTO_SCTP;
  ExpectRejected(f, "inet protocol");
  f = Connection();
  f.inet.local_port = 70000;
  ExpectRejected(f, "port out of range");
  f = Connection();
  f.inet.options |= 1u << 20;
  ExpectRejected(f, "unknown socket option bits");
  f = Connection();
  f.inet.state = TCP_SYN_SENT;
  ExpectRejected(f, "socket state");
  f = Connection();
  f.inet.tcp.unsent = 100;
  ExpectRejected(f, "unsent bytes");
  f = Connection();
  f.inet.tcp.snd_wscale = 15;
  ExpectRejected(f, "window scale");
  f = Connection();
  f.inet.keep_cnt = 128;
  ExpectRejected(f, "keepalive timing");
  f = Connection();
  f.inet.remote_port = 0;
  ExpectRejected(f, "without a peer");
  // The table name reaches the nft command: only names cryo makes pass.
  f = Connection();
  f.inet.lock_table = "cryo_1; flush ruleset";
  ExpectRejected(f, "lock table name");
  f = Connection();
  f.inet.state = TCP_LISTEN;
  ExpectRejected(f, "no established connection");
  model::Fd pipe;
  pipe.fd = 3;
  pipe.type = model::FdType::kPipe;
  pipe.inet.family = AF_INET;
  ExpectRejected(pipe, "has inet state but is no socket");
}

}  // namespace
}  // namespace cryo::image
