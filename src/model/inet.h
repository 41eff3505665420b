// The captured state of one TCP or UDP socket (IPv4 or IPv6): addresses, the options restore
// re-applies and, for an established TCP connection dumped with --tcp-established, what TCP
// repair mode shows of it (sequence numbers, queues, negotiated options, windows).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace cryo::model {

// Bits of InetSocket::options: boolean socket options that were on.
enum InetOption : uint32_t {
  kInetReuseAddr = 1u << 0,  // SO_REUSEADDR
  kInetReusePort = 1u << 1,  // SO_REUSEPORT
  kInetKeepAlive = 1u << 2,  // SO_KEEPALIVE
  kInetNoDelay = 1u << 3,    // TCP_NODELAY
  kInetV6Only = 1u << 4,     // IPV6_V6ONLY
  kInetBroadcast = 1u << 5,  // SO_BROADCAST
  kInetSndBufSet = 1u << 6,  // sndbuf differs from a new socket's: set again
  kInetRcvBufSet = 1u << 7,  // rcvbuf likewise
  kInetOptionsAll = (1u << 8) - 1,
};

// Bits of TcpRepairState::tcp_options, the options negotiated at connect.
enum TcpNegotiated : uint32_t {
  kTcpSack = 1u << 0,
  kTcpTimestamps = 1u << 1,
  kTcpWindowScale = 1u << 2,
  kTcpNegotiatedAll = (1u << 3) - 1,
};

// What TCP_REPAIR reads of an established connection.
struct TcpRepairState {
  uint32_t send_seq = 0;   // TCP_QUEUE_SEQ of the send queue: write_seq
  uint32_t recv_seq = 0;   // TCP_QUEUE_SEQ of the receive queue: rcv_nxt
  std::string send_queue;  // bytes not acknowledged by the peer (sent or not)
  uint32_t unsent = 0;     // of which never sent (SIOCOUTQNSD)
  std::string recv_queue;  // bytes received, not read by the process
  uint32_t mss = 0;        // TCP_MAXSEG
  uint32_t snd_wscale = 0;
  uint32_t rcv_wscale = 0;
  uint32_t tcp_options = 0;  // TcpNegotiated bits
  uint32_t timestamp = 0;    // TCP_TIMESTAMP
  // TCP_REPAIR_WINDOW
  uint32_t snd_wl1 = 0;
  uint32_t snd_wnd = 0;
  uint32_t max_window = 0;
  uint32_t rcv_wnd = 0;
  uint32_t rcv_wup = 0;
  bool operator==(const TcpRepairState&) const = default;
};

struct InetSocket {
  int32_t family = 0;    // AF_INET, AF_INET6
  int32_t protocol = 0;  // IPPROTO_TCP, IPPROTO_UDP
  int32_t state = 0;     // TCP_LISTEN, TCP_ESTABLISHED, TCP_CLOSE (unconnected UDP, new TCP)
  std::array<uint8_t, 16> local_addr{};  // 4 bytes used for AF_INET
  uint32_t local_port = 0;
  std::array<uint8_t, 16> remote_addr{};
  uint32_t remote_port = 0;  // 0: not connected
  bool bound = false;        // bind() was called (or connect() bound it)
  uint32_t backlog = 0;      // listening TCP
  uint32_t options = 0;      // InetOption bits
  uint32_t sndbuf = 0;       // SO_SNDBUF as getsockopt shows it (twice what was set)
  uint32_t rcvbuf = 0;
  // Established TCP: the repair state and the nftables table that blocks the connection's
  // packets until restore removes it (empty when the lock was released at dump).
  TcpRepairState tcp;
  std::string lock_table;
  bool operator==(const InetSocket&) const = default;
};

}  // namespace cryo::model
