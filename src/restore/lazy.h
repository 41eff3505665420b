// Lazy restore (docs/lazy-pages.md): which pages a restored process gets after it runs, and the
// hand-over of its userfaultfd to the lazy-pages daemon (`cryo lazy-pages`, restore/lazy_daemon.h).
#pragma once

#include <sys/types.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "mem/page_scan.h"
#include "model/process.h"

namespace cryo::restore {

// The pages of process `index` (live) that lazy restore leaves to the daemon, in image addresses,
// sorted and merged: the PRESENT runs of private anonymous mappings (userfaultfd's MISSING mode
// serves no other private kind) that are neither locked, nor registered with the process's own
// userfaultfd, nor the source of pages a child inherits (those are filled before the child is
// created, so it shares them). Pages in parent images (pre-dump) are always filled before the
// process runs: only what changed after the last pre-dump is lazy, unless `parent_pages`
// (--lazy-parent-pages, cryo migrate): then the daemon delivers those too, from the local images,
// after the process runs.
std::vector<mem::PageRange> LazyPages(const model::ProcessTree& tree, size_t index,
                                      bool parent_pages = false);

// A run whose content only the page server has (a post-copy dump, `dump --lazy-pages`).
inline bool IsRemoteRun(const model::PageRun& r) { return r.flags == model::kPageLazy; }

// Whether vma `i` of process `index` holds lazy pages (then it is registered whole).
std::vector<bool> LazyVmas(const model::ProcessTree& tree, size_t index, bool parent_pages = false);

// The daemon's socket in an image directory, and its address.
std::string LazySocketPath(const std::string& images_dir);
Result<sockaddr_un> LazySocketAddress(const std::string& path);
// The daemon's listening socket, bound at LazySocketPath (a stale one is replaced), for root
// only; non-blocking and close-on-exec.
Result<UniqueFd> ListenLazySocket(const std::string& images_dir);

// One area at hand-over: `len` bytes at `addr` hold image addresses [image_start, image_start +
// len). The restore hands over areas at their final addresses (addr == image_start): the blob
// registers each once it has moved it there (restorer/abi.h, kMadvLazy).
struct LazyArea {
  uint64_t addr = 0;
  uint64_t image_start = 0;
  uint64_t len = 0;
};

// The userfaultfd features lazy restore uses: every non-cooperative event, so that the daemon
// follows forks, moves, unmaps and discards of areas it has not filled yet.
uint64_t LazyUffdFeatures();

// A hand-over sent: the userfaultfd, for the blob to register the areas with (MISSING mode) and
// close, and the connection on which the daemon's acknowledgement comes.
struct LazyHandOver {
  UniqueFd uffd;
  UniqueFd sock;
};

// In the restore child (target mm, root credentials, before the blob): creates the userfaultfd
// and hands it to the daemon listening at `socket_path` with the `areas` it will serve. Does not
// wait for the daemon: the child goes on with its files while the daemon takes the areas in.
Result<LazyHandOver> HandOverToDaemon(const std::string& socket_path, pid_t pid,
                                      const std::vector<LazyArea>& areas, uint32_t flags);

// The daemon's acknowledgement of a hand-over on `sock`: required before the blob registers the
// areas (a refused process would wait for pages nobody serves).
Status AwaitHandOver(int sock, pid_t pid);

// In the restore, once every process is released: tells the daemon that the processes it was
// handed run now, so that it may start the background fill. Until then the daemon only answers
// faults and follows events: a batch in flight would hold up each mremap of the restorer blob,
// which waits until the daemon has read its event.
Status TellDaemonRunning(const std::string& socket_path, pid_t root);

// The wire format of the hand-over (SOCK_SEQPACKET, one message with the uffd and a pidfd of the
// process in SCM_RIGHTS), shared with the daemon. The reply is one LazyReply.
inline constexpr uint32_t kLazyMagic = 0x4c5a5931;  // "LZY1"
struct LazyHello {
  uint32_t magic = kLazyMagic;
  int32_t pid = 0;
  uint32_t area_count = 0;
  uint32_t flags = 0;  // kLazyParentPages
  // followed by area_count LazyArea
};
struct LazyReply {
  uint32_t magic = kLazyMagic;
  int32_t status = 0;  // 0, or an errno value
  char message[248] = {};
};
inline constexpr size_t kMaxLazyAreas = 4096;
inline constexpr uint32_t kLazyParentPages = 1;  // pages of parent images are lazy too
inline constexpr uint32_t kLazyRunning = 2;      // no areas, no fds: the processes run now

}  // namespace cryo::restore
