#include "restore/lazy.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "sys/compat_uapi.h"
#include "sys/syscalls.h"

namespace cryo::restore {
namespace {

// Vmas of process `index` that a child inherits pages from (model::InheritSource of a child's
// vma with INHERITED runs).
std::vector<bool> CowSources(const model::ProcessTree& tree, size_t index) {
  const model::Process& p = tree.processes[index];
  std::vector<bool> out(p.vmas.size(), false);
  for (const model::Process& c : tree.processes) {
    if (c.zombie || c.ppid != p.pid || &c == &p) continue;
    auto run = c.pagemap.begin();
    for (const model::Vma& v : c.vmas) {
      bool inherits = false;
      for (; run != c.pagemap.end() && run->vaddr < v.end; ++run) {
        inherits = inherits || (run->vaddr >= v.start && (run->flags & model::kPageInherited));
      }
      if (!inherits) continue;
      if (const model::Vma* src = model::InheritSource(p.vmas, v)) out[src - p.vmas.data()] = true;
    }
  }
  return out;
}

}  // namespace

std::vector<bool> LazyVmas(const model::ProcessTree& tree, size_t index, bool parent_pages) {
  const model::Process& p = tree.processes[index];
  std::vector<bool> cow = CowSources(tree, index);
  std::vector<bool> out(p.vmas.size(), false);
  auto run = p.pagemap.begin();
  for (size_t i = 0; i < p.vmas.size(); i++) {
    const model::Vma& v = p.vmas[i];
    bool present = false, remote = false;
    for (; run != p.pagemap.end() && run->vaddr < v.end; ++run) {
      if (run->vaddr < v.start) continue;
      present = present || (run->flags & model::kPagePresent) ||
                (parent_pages && (run->flags & model::kPageInParent));
      remote = remote || IsRemoteRun(*run);
    }
    // Pages only the page server holds make the vma lazy whatever else (validation refuses
    // them where lazy restore cannot serve them).
    out[i] = remote || (present && model::LazyEligible(v) && !cow[i]);
  }
  return out;
}

std::vector<mem::PageRange> LazyPages(const model::ProcessTree& tree, size_t index,
                                      bool parent_pages) {
  const model::Process& p = tree.processes[index];
  std::vector<bool> lazy = LazyVmas(tree, index, parent_pages);
  std::vector<mem::PageRange> out;
  size_t vi = 0;
  for (const model::PageRun& r : p.pagemap) {
    bool content = (r.flags & model::kPagePresent) || IsRemoteRun(r) ||
                   (parent_pages && (r.flags & model::kPageInParent));
    if (!content) continue;
    while (vi < p.vmas.size() && p.vmas[vi].end <= r.vaddr) vi++;
    if (vi == p.vmas.size() || !lazy[vi]) continue;
    mem::PageRange pr{r.vaddr, r.vaddr + (r.nr_pages << 12)};
    if (!out.empty() && out.back().end == pr.start) {
      out.back().end = pr.end;
    } else {
      out.push_back(pr);
    }
  }
  return out;
}

std::string LazySocketPath(const std::string& images_dir) {
  return images_dir + "/lazy-pages.sock";
}

Result<sockaddr_un> LazySocketAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return MakeError(ErrorKind::kInvalidArg, "lazy-pages socket path too long: {}", path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

Result<UniqueFd> ListenLazySocket(const std::string& images_dir) {
  std::string path = LazySocketPath(images_dir);
  sockaddr_un addr = CRYO_TRY(LazySocketAddress(path));
  ::unlink(path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoError("socket");
  mode_t old = ::umask(0077);  // the socket is for root's restore only
  int r = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (r < 0) return ErrnoError("bind {}", path);
  if (::listen(fd.get(), 64) < 0) return ErrnoError("listen {}", path);
  return fd;
}

namespace {

Result<UniqueFd> ConnectDaemon(const std::string& socket_path) {
  sockaddr_un addr = CRYO_TRY(LazySocketAddress(socket_path));
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return ErrnoError("socket");
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return ErrnoError("connect to the lazy-pages daemon at {} (is `cryo lazy-pages` running?)",
                      socket_path);
  }
  return sock;
}

}  // namespace

Status AwaitHandOver(int sock, pid_t pid) {
  LazyReply reply;
  ssize_t n = ::recv(sock, &reply, sizeof reply, 0);
  if (n != static_cast<ssize_t>(sizeof reply) || reply.magic != kLazyMagic) {
    return MakeError(ErrorKind::kInternal, "the lazy-pages daemon did not acknowledge pid {}", pid);
  }
  if (reply.status != 0) {
    reply.message[sizeof reply.message - 1] = 0;
    return SysError(reply.status,
                    fmt::format("the lazy-pages daemon refused pid {}: {}", pid, reply.message));
  }
  return {};
}

uint64_t LazyUffdFeatures() {
  return UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
         UFFD_FEATURE_EVENT_UNMAP;
}

Result<LazyHandOver> HandOverToDaemon(const std::string& socket_path, pid_t pid,
                                      const std::vector<LazyArea>& areas, uint32_t flags) {
  if (areas.size() > kMaxLazyAreas) {
    return MakeError(ErrorKind::kUnsupported, "{} lazy areas (at most {})", areas.size(),
                     kMaxLazyAreas);
  }
  UniqueFd uffd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (!uffd.valid()) return ErrnoError("userfaultfd for lazy restore");
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = LazyUffdFeatures();
  if (::ioctl(uffd.get(), UFFDIO_API, &api) < 0) {
    return ErrnoError("UFFDIO_API with the events lazy restore follows ({:#x})",
                      LazyUffdFeatures());
  }
  UniqueFd sock = CRYO_TRY(ConnectDaemon(socket_path));
  LazyHello hello;
  hello.pid = pid;
  hello.area_count = static_cast<uint32_t>(areas.size());
  hello.flags = flags;
  std::vector<std::byte> msg(sizeof hello + areas.size() * sizeof(LazyArea));
  std::memcpy(msg.data(), &hello, sizeof hello);
  if (!areas.empty()) {
    std::memcpy(msg.data() + sizeof hello, areas.data(), areas.size() * sizeof(LazyArea));
  }
  // With our pidfd: should the daemon fail, it ends this process rather than let it run on with
  // holes in its memory (a pid alone could name another process in the daemon's namespace).
  UniqueFd self = CRYO_TRY(sys::PidfdOpen(pid));
  int fds[2] = {uffd.get(), self.get()};
  auto sent = sys::SendWithFds(sock.get(), msg, fds);
  if (!sent) {
    return Wrapped(std::move(sent).error(),
                   fmt::format("hand pid {}'s userfaultfd to the lazy-pages daemon", pid));
  }
  if (*sent != msg.size()) {
    return MakeError(ErrorKind::kInternal, "short hand-over of pid {} to the lazy-pages daemon",
                     pid);
  }
  return LazyHandOver{std::move(uffd), std::move(sock)};
}

Status TellDaemonRunning(const std::string& socket_path, pid_t root) {
  UniqueFd sock = CRYO_TRY(ConnectDaemon(socket_path));
  LazyHello hello;
  hello.pid = root;
  hello.flags = kLazyRunning;
  if (::send(sock.get(), &hello, sizeof hello, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof hello)) {
    return ErrnoError("tell the lazy-pages daemon that pid {} runs", root);
  }
  // No wait for the daemon's reply: the notice only starts its fill sooner, and the wait (a
  // wake-up of the daemon, which has just been given work by the faults of the processes now
  // running) cost the restore 0.2-4 ms.
  return {};
}

}  // namespace cryo::restore
