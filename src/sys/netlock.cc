#include "sys/netlock.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "base/io.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "sys/forked_child.h"

namespace cryo::sys {
namespace {

constexpr const char* kNftPaths[] = {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"};

const char* FindNft() {
  for (const char* p : kNftPaths) {
    if (::access(p, X_OK) == 0) return p;
  }
  return nullptr;
}

bool IsV4Mapped(const std::array<uint8_t, 16>& a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), kPrefix, sizeof kPrefix) == 0;
}

std::string AddrText(int family, const std::array<uint8_t, 16>& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, addr.data(), buf, sizeof buf);
  return buf;
}

// The nft match of one direction: "ip saddr A tcp sport P ip daddr B tcp dport Q".
std::string Match(const TcpConnection& c, bool outgoing) {
  bool v4 = c.family == AF_INET || IsV4Mapped(c.local_addr);
  auto text = [&](const std::array<uint8_t, 16>& a) {
    if (c.family == AF_INET6 && v4) {
      std::array<uint8_t, 16> b{};
      std::memcpy(b.data(), a.data() + 12, 4);
      return AddrText(AF_INET, b);
    }
    return AddrText(c.family, a);
  };
  const char* ip = v4 ? "ip" : "ip6";
  std::string local = text(c.local_addr), remote = text(c.remote_addr);
  if (outgoing) {
    return fmt::format("{0} saddr {1} tcp sport {2} {0} daddr {3} tcp dport {4}", ip, local,
                       c.local_port, remote, c.remote_port);
  }
  return fmt::format("{0} saddr {1} tcp sport {2} {0} daddr {3} tcp dport {4}", ip, remote,
                     c.remote_port, local, c.local_port);
}

}  // namespace

std::string FormatEndpoint(int family, const std::array<uint8_t, 16>& addr, uint16_t port) {
  if (family == AF_INET6) return fmt::format("[{}]:{}", AddrText(family, addr), port);
  return fmt::format("{}:{}", AddrText(family, addr), port);
}

Status RunNft(const std::string& script) {
  const char* nft = FindNft();
  if (nft == nullptr) {
    return MakeError(ErrorKind::kUnsupported,
                     "the network lock needs the nft command (package nftables): not found");
  }
  int in[2], err[2];
  if (::pipe2(in, O_CLOEXEC) < 0) return ErrnoError("pipe for nft");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(err, O_CLOEXEC) < 0) return ErrnoError("pipe for nft");
  UniqueFd err_r(err[0]), err_w(err[1]);
  int in_fd = in_r.get(), err_fd = err_w.get();
  auto child = ForkedChild::Start([=] {
    if (::dup2(in_fd, 0) < 0 || ::dup2(err_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) return 126;
    const char* argv[] = {nft, "-f", "-", nullptr};
    ::execv(nft, const_cast<char* const*>(argv));
    return 127;
  });
  if (!child) return std::unexpected(child.error());
  in_r.Reset();
  err_w.Reset();
  // Scripts are a few hundred bytes per connection: far below a pipe's capacity.
  CRYO_TRYV(WriteFull(in_w.get(),
                      {reinterpret_cast<const std::byte*>(script.data()), script.size()},
                      "nft script"));
  in_w.Reset();
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(err_r.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  int code = CRYO_TRY(child->WaitExit(std::chrono::seconds(30)));
  if (code != 0) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return MakeError(ErrorKind::kSys, "nft exited with {}: {}", code, out);
  }
  return {};
}

std::string NetLock::NewTableName(int pid) {
  std::random_device rd;
  return fmt::format("cryo_{}_{:08x}", pid, rd());
}

NetLock::NetLock(NetLock&& o) noexcept : table_(std::move(o.table_)), active_(o.active_) {
  o.active_ = false;
}

NetLock& NetLock::operator=(NetLock&& o) noexcept {
  if (this != &o) {
    if (active_) (void)Release();
    table_ = std::move(o.table_);
    active_ = o.active_;
    o.active_ = false;
  }
  return *this;
}

NetLock::~NetLock() {
  if (!active_) return;
  if (auto s = Release(); !s) {
    log::Warn("network lock: remove table inet {}: {}", table_, s.error().Message());
  }
}

Status NetLock::Block(const TcpConnection& c) {
  std::string script;
  if (!active_) {
    script += fmt::format(
        "table inet {0} {{\n"
        "  chain in {{ type filter hook input priority -300; policy accept; }}\n"
        "  chain out {{ type filter hook output priority -300; policy accept; }}\n"
        "}}\n",
        table_);
  }
  script += fmt::format("add rule inet {} in {} drop\n", table_, Match(c, false));
  script += fmt::format("add rule inet {} out {} drop\n", table_, Match(c, true));
  bool created = !active_;
  auto s = RunNft(script);
  if (!s) {
    // nft applies a script as one transaction: nothing of it is left on failure.
    return Wrapped(std::move(s).error(),
                   fmt::format("network lock for {} - {}",
                               FormatEndpoint(c.family, c.local_addr, c.local_port),
                               FormatEndpoint(c.family, c.remote_addr, c.remote_port)));
  }
  if (created) active_ = true;
  log::Debug("network lock: table inet {} drops {} - {}", table_,
             FormatEndpoint(c.family, c.local_addr, c.local_port),
             FormatEndpoint(c.family, c.remote_addr, c.remote_port));
  return {};
}

Status NetLock::Release() {
  if (!active_) return {};
  active_ = false;
  return RunNft(fmt::format("delete table inet {}\n", table_));
}

Status RemoveNetLockTable(const std::string& name) {
  // "add" first makes the delete succeed whether or not the table is there.
  return RunNft(fmt::format("add table inet {0}\ndelete table inet {0}\n", name));
}

}  // namespace cryo::sys
