// The page-server wire protocol (docs/page-server.md): fixed 32-byte little-endian frames over
// TCP, each optionally followed by a payload. Version 1 is pull only: the lazy-pages daemon asks
// the source (`cryo dump --lazy-pages --port P`) for pages of a process; the source answers from
// the frozen process's memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace cryo::mem {

inline constexpr uint32_t kWireMagic = 0x50595243;  // "CRYP"
inline constexpr uint16_t kWireVersion = 1;
inline constexpr uint64_t kWireMaxPayload = 4ull << 20;  // one GET: at most 4 MiB

enum class WireType : uint16_t {
  kHello = 1,  // both ways, first: the sender's version in `version`, no payload
  kGet = 2,    // daemon -> source: `len` bytes (page multiple) of process `pid` at `addr`
  kData = 3,   // source -> daemon: the answer to the GET before it, `len` bytes follow
  kError = 4,  // either way: `len` bytes of message follow; the connection ends
  kDone = 5,   // daemon -> source: every page was delivered, the source may end
  // Migration (cryo migrate -> migrate-receive), before the page traffic on the same connection:
  kFileBegin = 6,  // an image file: payload = its relative name (dir/file), `addr` = its size
  kFileData = 7,   // the next bytes of that file (any length up to kWireMaxPayload)
  kFileEnd = 8,    // the file is complete
  kRestore = 9,    // the image is complete: restore it; `addr` = µs frozen so far at the source
};

struct WireFrame {
  uint32_t magic = kWireMagic;
  uint16_t version = kWireVersion;
  uint16_t type = 0;
  int32_t pid = 0;
  uint32_t reserved = 0;
  uint64_t addr = 0;
  uint64_t len = 0;  // payload bytes (kData, kError), or bytes asked (kGet)

  static WireFrame Of(WireType t) {
    WireFrame f;
    f.type = static_cast<uint16_t>(t);
    return f;
  }
  bool Is(WireType t) const { return type == static_cast<uint16_t>(t); }
};
static_assert(sizeof(WireFrame) == 32);

// "host:port" (IPv4 dotted or IPv6 in brackets) into a connected TCP socket.
Result<UniqueFd> WireConnect(const std::string& host_port);
// A listening TCP socket on `address` (IPv4 or IPv6 literal) and `port`.
Result<UniqueFd> WireListen(const std::string& address, uint16_t port);

Status WireSend(int fd, const WireFrame& f, std::span<const std::byte> payload = {});
// Reads one frame and checks magic, version, type and payload size (a kData or kError payload
// over kWireMaxPayload, a kGet over it, an unknown type: kCorruptImage errors naming `peer`).
// A kError frame's message becomes the error.
Result<WireFrame> WireRecv(int fd, const std::string& peer);
// Sends the regular files of `dir` as `prefix`/name (kFileBegin, kFileData..., kFileEnd each),
// skipping names `skip` returns true for.
Status WireSendDir(int fd, const std::string& dir, const std::string& prefix,
                   bool (*skip)(const std::string& name) = nullptr);
// A received file name is safe to create under a directory: one or two components of
// [A-Za-z0-9._-], none empty, "." or "..".
bool WireSafeName(const std::string& name);

// The HELLO exchange that opens a connection: `first` sends ours and then expects the peer's,
// otherwise the other way round. A peer starting with anything else is a kCorruptImage error.
Status WireHello(int fd, bool first, const std::string& peer);

// Reads exactly `out.size()` payload bytes.
Status WireRecvPayload(int fd, std::span<std::byte> out, const std::string& peer);

}  // namespace cryo::mem
