// The network lock: an nftables table that drops every packet of chosen TCP connections, in both
// directions, while cryo holds them in repair mode. A peer's packets are lost instead of
// answered with a reset, so the peer retransmits until the connection is back (docs/network.md).
// The table is made and removed with the `nft` command (package nftables).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/error.h"

namespace cryo::sys {

// One TCP connection as the local socket sees it. Addresses in network order, 4 bytes used for
// AF_INET; an AF_INET6 address that maps an IPv4 one (::ffff:a.b.c.d) is matched as IPv4.
struct TcpConnection {
  int family = 0;
  std::array<uint8_t, 16> local_addr{};
  uint16_t local_port = 0;
  std::array<uint8_t, 16> remote_addr{};
  uint16_t remote_port = 0;
};

// "a.b.c.d:port" or "[v6]:port".
std::string FormatEndpoint(int family, const std::array<uint8_t, 16>& addr, uint16_t port);

// Owns one table while it exists: the destructor removes it unless Keep() was called.
class NetLock {
 public:
  // A name no other dump uses at the same time: "cryo_<pid>_<random hex>".
  static std::string NewTableName(int pid);

  NetLock() = default;
  explicit NetLock(std::string table) : table_(std::move(table)) {}
  NetLock(NetLock&& o) noexcept;
  NetLock& operator=(NetLock&& o) noexcept;
  NetLock(const NetLock&) = delete;
  NetLock& operator=(const NetLock&) = delete;
  ~NetLock();

  const std::string& table() const { return table_; }
  bool active() const { return active_; }

  // Drops the packets of `c` from now on (the table is created with the first connection).
  Status Block(const TcpConnection& c);
  // Leaves the table in place when this object goes (a dump that killed the process: restore
  // removes it).
  void Keep() { active_ = false; }
  // Removes the table now.
  Status Release();

 private:
  std::string table_;
  bool active_ = false;
};

// Removes table `name` if it exists (restore, once the connections are back).
Status RemoveNetLockTable(const std::string& name);

// Runs `nft -f -` with `script` on its stdin; the error names nft's own message.
Status RunNft(const std::string& script);

}  // namespace cryo::sys
