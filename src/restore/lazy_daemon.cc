#include "restore/lazy_daemon.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/io.h"
#include "base/log.h"
#include "base/stopwatch.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/page_chain.h"
#include "image/pages_file.h"
#include "image/tree_io.h"
#include "image/validate.h"
#include "mem/page_wire.h"
#include "restore/lazy.h"
#include "restore/lazy_source.h"
#include "sys/compat_uapi.h"
#include "sys/syscalls.h"

namespace cryo::restore {
namespace {

using Clock = SteadyClock;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kFaultReadAhead = 16;    // pages copied with a faulting one, if lazy too
constexpr uint64_t kBackgroundBatch = 512;  // pages per background UFFDIO_COPY (2 MiB)
// Without the restore's running notice (restore/lazy.h), the fill starts this long after the
// first hand-over anyway.
constexpr double kRunningFallbackSeconds = 2;

// A registered area: `len` bytes now at `cur` hold image addresses from `image`.
struct Area {
  uint64_t cur = 0;
  uint64_t image = 0;
  uint64_t len = 0;
};

struct Target {
  pid_t pid = 0;  // 0: a child followed through a fork
  UniqueFd uffd;
  UniqueFd pidfd;  // handed-over processes (not forked children): to end them if we fail
  const Source* source = nullptr;
  std::vector<Area> areas;
  IntervalSet pending;  // image addresses not delivered yet
  IntervalSet view;     // image addresses whose content is still the image's (not discarded)
  bool gone = false;
  uint64_t batch = 16;  // pages of the next background batch (doubling up to kBackgroundBatch)

  const Area* ByCur(uint64_t a) const {
    for (const Area& x : areas) {
      if (a >= x.cur && a < x.cur + x.len) return &x;
    }
    return nullptr;
  }
  const Area* ByImage(uint64_t a) const {
    for (const Area& x : areas) {
      if (a >= x.image && a < x.image + x.len) return &x;
    }
    return nullptr;
  }
  // Applies f(image_start, image_end) to the image addresses behind current [s, e).
  template <typename F>
  void EachImage(uint64_t s, uint64_t e, F f) const {
    for (const Area& x : areas) {
      uint64_t a = std::max(s, x.cur), b = std::min(e, x.cur + x.len);
      if (a < b) f(x.image + (a - x.cur), x.image + (b - x.cur));
    }
  }
  // Cuts the areas at s and e (current addresses), so that [s, e) is whole areas.
  void Split(uint64_t s, uint64_t e) {
    std::vector<Area> out;
    for (const Area& x : areas) {
      uint64_t cuts[] = {x.cur, std::clamp(s, x.cur, x.cur + x.len),
                         std::clamp(e, x.cur, x.cur + x.len), x.cur + x.len};
      for (int i = 0; i < 3; i++) {
        if (cuts[i] < cuts[i + 1]) {
          out.push_back({cuts[i], x.image + (cuts[i] - x.cur), cuts[i + 1] - cuts[i]});
        }
      }
    }
    areas = std::move(out);
  }
};

enum class CopyResult { kDone, kAgain, kGone };

class Daemon {
 public:
  explicit Daemon(const LazyPagesOptions& o) : opts_(o) {}
  ~Daemon() {
    if (!path_.empty()) ::unlink(path_.c_str());  // also when loading or serving failed
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  Status Load() {
    dir_.emplace(CRYO_TRY(image::ImageDir::Open(opts_.images_dir)));
    tree_ = CRYO_TRY(image::ReadTree(*dir_));
    std::optional<image::Inventory> inv;  // read once, if a parent chain is needed
    for (size_t i = 0; i < tree_.processes.size(); i++) {
      const model::Process& p = tree_.processes[i];
      if (p.zombie) continue;
      auto s = std::make_unique<Source>();
      s->p = &p;
      s->lazy = LazyPages(tree_, i, opts_.parent_pages);
      if (opts_.parent_pages && !s->lazy.empty()) {
        if (!inv) inv = CRYO_TRY(image::ReadInventory(*dir_));
        s->chain.emplace(CRYO_TRY(image::PageChain::Open(*dir_, *inv, p.pid)));
      }
      if (s->lazy.empty()) continue;
      bool remote = std::any_of(p.pagemap.begin(), p.pagemap.end(), IsRemoteRun);
      if (remote) {
        if (opts_.page_server.empty() && opts_.page_server_fd < 0) {
          return MakeError(ErrorKind::kInvalidArg,
                           "pid {}: the image is a post-copy dump (its pages are on the source): "
                           "give --page-server ADDRESS:PORT",
                           p.pid);
        }
        if (!remote_) {
          remote_ = std::make_unique<Remote>();
          CRYO_TRYV(remote_->Connect(opts_.page_server, opts_.page_server_fd));
        }
        s->remote = remote_.get();
      }
      if (image::NeedsPagesFile(p)) CRYO_TRYV(s->OpenPages(*dir_, opts_.images_dir));
      for (const auto& r : s->lazy) lazy_pages_ += r.pages();
      sources_[p.pid] = std::move(s);
    }
    log::Info("lazy-pages: {} processes, {} pages ({} MiB) to deliver; listening on {}",
              sources_.size(), lazy_pages_, lazy_pages_ >> 8, path_);
    return {};
  }

  Status Listen() {
    path_ = LazySocketPath(opts_.images_dir);
    if (opts_.listen_fd >= 0) {
      listener_.Reset(opts_.listen_fd);  // bound by migrate-receive (ListenLazySocket)
      return {};
    }
    listener_ = CRYO_TRY(ListenLazySocket(opts_.images_dir));
    return {};
  }

  void KillWaiting() {
    for (const auto& t : targets_) {
      if (t->pidfd.valid() && !t->pending.empty()) {
        log::Error("lazy-pages: killing pid {}: its memory cannot be delivered", t->pid);
        (void)::syscall(SYS_pidfd_send_signal, t->pidfd.get(), SIGKILL, nullptr, 0);
      }
    }
  }

  Result<LazyPagesStats> Run() {
    auto t_wait = Clock::now();
    while (received_ < sources_.size() || !targets_.empty()) {
      CRYO_TRYV(PollOnce());
      if (received_ < sources_.size() && SecondsSince(t_wait) > opts_.wait_seconds) {
        return MakeError(ErrorKind::kInternal,
                         "{} of {} processes were handed over within {} s: giving up", received_,
                         sources_.size(), opts_.wait_seconds);
      }
      if (received_ > 0 && !running_ && SecondsSince(t_handed_) > kRunningFallbackSeconds) {
        log::Info("lazy-pages: no word from the restore {} s after the hand-over: filling anyway",
                  kRunningFallbackSeconds);
        SetRunning();
      }
      if (!failure_.empty()) {
        return MakeError(ErrorKind::kInternal, "pages could not be delivered: {}", failure_);
      }
      // Background work, one batch at a time: a fault never waits behind more than one.
      bool fill = running_ && SecondsSince(t_start_) >= opts_.fill_delay_seconds;
      for (size_t i = 0; fill && i < targets_.size(); i++) {
        Target& t = *targets_[(next_ + i) % targets_.size()];
        if (t.gone || t.pending.empty()) continue;
        next_ = (next_ + i + 1) % targets_.size();
        CRYO_TRYV(BackgroundStep(t));
        break;
      }
      Reap();
    }
    ::unlink(path_.c_str());
    if (!failure_.empty()) {
      return MakeError(ErrorKind::kInternal, "pages could not be delivered: {}", failure_);
    }
    if (remote_) remote_->Done();
    stats_.seconds = running_ ? SecondsSince(t_start_) : 0;
    if (background_seconds_ > 0) {
      stats_.background_gibps =
          static_cast<double>(stats_.pages_background * kPage) / (1 << 30) / background_seconds_;
    }
    if (!fault_us_.empty()) {
      std::sort(fault_us_.begin(), fault_us_.end());
      stats_.fault_us_median = fault_us_[fault_us_.size() / 2];
      stats_.fault_us_p99 = fault_us_[std::min(fault_us_.size() - 1, fault_us_.size() * 99 / 100)];
    }
    return stats_;
  }

 private:
  bool HasPending() const {
    if (!running_ || SecondsSince(t_start_) < opts_.fill_delay_seconds) return false;
    return std::any_of(targets_.begin(), targets_.end(),
                       [](const auto& t) { return !t->gone && !t->pending.empty(); });
  }

  Status PollOnce() {
    std::vector<pollfd> fds;
    fds.push_back({listener_.get(), POLLIN, 0});
    for (const auto& c : conns_) fds.push_back({c.get(), POLLIN, 0});
    for (const auto& t : targets_) fds.push_back({t->uffd.get(), POLLIN, 0});
    int timeout = HasPending() ? 0 : 200;
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) return ErrnoError("poll");
    if (n <= 0) return {};
    size_t k = 1;
    const size_t polled_targets = targets_.size();  // hand-overs and forks add more below
    std::vector<UniqueFd> keep;
    for (auto& c : conns_) {
      short rev = fds[k++].revents;
      if (rev & (POLLIN | POLLHUP | POLLERR)) {
        HandleHello(c.get());  // one message per connection, answered; then closed
      } else {
        keep.push_back(std::move(c));
      }
    }
    conns_ = std::move(keep);
    if (fds[0].revents & POLLIN) {  // polled from the next round on
      int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) conns_.emplace_back(c);
    }
    for (size_t i = 0; i < polled_targets; i++) {
      short rev = fds[k++].revents;
      if (rev & POLLIN) CRYO_TRYV(ReadEvents(*targets_[i]));
      if (rev & (POLLERR | POLLHUP)) targets_[i]->gone = true;
    }
    return {};
  }

  void Reply(int fd, int status, const std::string& msg) {
    LazyReply r;
    r.status = status;
    std::strncpy(r.message, msg.c_str(), sizeof r.message - 1);
    (void)!::send(fd, &r, sizeof r, MSG_NOSIGNAL);
  }

  void SetRunning() {
    if (running_) return;
    running_ = true;
    t_start_ = Clock::now();
  }

  void HandleHello(int c) {
    std::vector<std::byte> buf(sizeof(LazyHello) + kMaxLazyAreas * sizeof(LazyArea));
    auto got = sys::RecvWithFds(c, buf, 2, MSG_DONTWAIT);
    LazyHello hello;
    if (!got || got->bytes < sizeof hello || got->truncated) {
      return Reply(c, EPROTO, "short or truncated hand-over message");
    }
    size_t n = got->bytes;
    UniqueFd uffd, pidfd;
    if (got->fds.size() > 0) uffd = std::move(got->fds[0]);
    if (got->fds.size() > 1) pidfd = std::move(got->fds[1]);
    std::memcpy(&hello, buf.data(), sizeof hello);
    if (hello.magic == kLazyMagic && (hello.flags & kLazyRunning)) {
      if (n != sizeof hello || hello.area_count != 0 || uffd.valid()) {
        return Reply(c, EPROTO, "malformed running notice");
      }
      log::Debug("lazy-pages: pid {} runs", hello.pid);
      stats_.running_notice = true;
      SetRunning();
      return Reply(c, 0, "");
    }
    if (((hello.flags & kLazyParentPages) != 0) != opts_.parent_pages) {
      return Reply(c, EINVAL,
                   "restore and lazy-pages disagree on --lazy-parent-pages: give both or none");
    }
    if (hello.magic != kLazyMagic || hello.area_count > kMaxLazyAreas ||
        n != sizeof hello + hello.area_count * sizeof(LazyArea)) {
      return Reply(c, EPROTO, "malformed hand-over message");
    }
    if (!uffd.valid() || !pidfd.valid()) {
      return Reply(c, EPROTO, "no userfaultfd and pidfd in the hand-over");
    }
    auto src = sources_.find(hello.pid);
    if (src == sources_.end()) {
      return Reply(c, ESRCH, fmt::format("pid {} has no lazy pages in this image", hello.pid));
    }
    if (std::any_of(targets_.begin(), targets_.end(),
                    [&](const auto& t) { return t->pid == hello.pid; })) {
      return Reply(c, EEXIST, fmt::format("pid {} was handed over already", hello.pid));
    }
    auto t = std::make_unique<Target>();
    t->pid = hello.pid;
    t->uffd = std::move(uffd);
    t->pidfd = std::move(pidfd);
    t->source = src->second.get();
    for (uint32_t i = 0; i < hello.area_count; i++) {
      LazyArea a;
      std::memcpy(&a, buf.data() + sizeof hello + i * sizeof a, sizeof a);
      if (a.len == 0 || (a.addr | a.image_start | a.len) % kPage != 0) {
        return Reply(c, EPROTO, "unaligned lazy area");
      }
      t->areas.push_back({a.addr, a.image_start, a.len});
    }
    for (const auto& r : t->source->lazy) {
      t->pending.Insert(r.start, r.end);
      t->view.Insert(r.start, r.end);
    }
    log::Debug("lazy-pages: pid {} handed over, {} areas", hello.pid, hello.area_count);
    targets_.push_back(std::move(t));
    if (received_++ == 0) t_handed_ = Clock::now();
    stats_.processes++;
    Reply(c, 0, "");
  }

  Status ReadEvents(Target& t) {
    for (;;) {
      uffd_msg msg{};
      ssize_t n = ::read(t.uffd.get(), &msg, sizeof msg);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return {};
      if (n < 0) return ErrnoError("read userfaultfd of pid {}", t.pid);
      if (n == 0) {
        t.gone = true;
        return {};
      }
      if (n != sizeof msg) return MakeError(ErrorKind::kInternal, "short userfaultfd message");
      switch (msg.event) {
        case UFFD_EVENT_PAGEFAULT:
          CRYO_TRYV(Fault(t, msg.arg.pagefault.address & ~(kPage - 1)));
          break;
        case UFFD_EVENT_FORK: {
          auto child = std::make_unique<Target>();
          child->uffd.Reset(static_cast<int>(msg.arg.fork.ufd));
          ::fcntl(child->uffd.get(), F_SETFL, O_NONBLOCK);
          child->source = t.source;
          child->areas = t.areas;
          child->view = t.view;
          // Pages the parent got after its memory was copied for the child are missing there:
          // the child gets every page whose content is still the image's (those it has already
          // are skipped as EEXIST).
          child->pending = t.view;
          stats_.forks++;
          targets_.push_back(std::move(child));
          break;
        }
        case UFFD_EVENT_REMAP: {
          uint64_t from = msg.arg.remap.from, to = msg.arg.remap.to, len = msg.arg.remap.len;
          log::Debug("lazy-pages: pid {}: remap {:#x} -> {:#x}, {} bytes", t.pid, from, to, len);
          t.Split(from, from + len);
          for (Area& a : t.areas) {
            if (a.cur >= from && a.cur < from + len) a.cur = a.cur - from + to;
          }
          stats_.events++;
          break;
        }
        case UFFD_EVENT_REMOVE:
        case UFFD_EVENT_UNMAP: {
          uint64_t s = msg.arg.remove.start, e = msg.arg.remove.end;
          log::Debug("lazy-pages: pid {}: {} {:#x}-{:#x}", t.pid,
                     msg.event == UFFD_EVENT_UNMAP ? "unmap" : "remove", s, e);
          // Discarded: those pages read as zeros now, never as the image's content.
          t.EachImage(s, e, [&](uint64_t a, uint64_t b) {
            t.pending.Erase(a, b);
            t.view.Erase(a, b);
          });
          if (msg.event == UFFD_EVENT_UNMAP) {
            t.Split(s, e);
            std::erase_if(t.areas, [&](const Area& a) { return a.cur >= s && a.cur < e; });
          }
          stats_.events++;
          break;
        }
        default:
          break;
      }
    }
  }

  // Copies image pages [img, img + pages * 4096) (inside one area and one run) to the target.
  // `copied` is set to the pages copied.
  CopyResult CopyPages(Target& t, uint64_t img, uint64_t pages, uint64_t& copied) {
    copied = 0;
    const Area* a = t.ByImage(img);
    if (a == nullptr) return CopyResult::kDone;
    uint64_t left = t.source->Offset(img).second;
    pages = std::min({pages, left / kPage, (a->image + a->len - img) / kPage});
    // A raw pages file is mapped: UFFDIO_COPY takes the pages from the page cache directly.
    const std::byte* src = t.source->Mapped(img);
    if (src == nullptr) {
      buf_.resize(pages * kPage);
      if (auto r = t.source->Read(img, {buf_.data(), buf_.size()}, cache_); !r) {
        log::Error("lazy-pages: {}", r.error().Message());
        failure_ = r.error().Message();
        return CopyResult::kGone;
      }
      src = buf_.data();
    }
    uint64_t cur = a->cur + (img - a->image);
    uint64_t done = 0;
    while (done < pages) {
      uffdio_copy c{};
      c.dst = cur + done * kPage;
      c.src = reinterpret_cast<uint64_t>(src + done * kPage);
      c.len = (pages - done) * kPage;
      int r = ::ioctl(t.uffd.get(), UFFDIO_COPY, &c);
      int64_t got = c.copy > 0 ? c.copy : 0;
      done += static_cast<uint64_t>(got) / kPage;
      if (r == 0) break;
      if (errno == EEXIST) {
        done++;  // already there (filled earlier, or inherited by a forked child)
        continue;
      }
      if (errno == EAGAIN && got > 0) continue;  // stopped short (a page there already)
      // EAGAIN: the address space is changing; ENOENT: the area moved (the process's mremap)
      // and its event is not read yet. Events first, then again.
      if (errno == EAGAIN || errno == ENOENT) {
        copied = done;
        return CopyResult::kAgain;
      }
      copied = done;
      if (errno == ESRCH) return CopyResult::kGone;  // the process went away
      // Anything else (EFAULT: the pages file shrank under us, ENOMEM): those pages cannot
      // be delivered.
      failure_ = fmt::format("pid {}: UFFDIO_COPY to {:#x} ({} pages): {}", t.pid, c.dst,
                             pages - done, strerror(errno));
      return CopyResult::kGone;
    }
    copied = done;
    return CopyResult::kDone;
  }

  Status Fault(Target& t, uint64_t addr) {
    auto t0 = Clock::now();
    stats_.faults++;
    const Area* a = t.ByCur(addr);
    uint64_t img = a ? a->image + (addr - a->cur) : 0;
    if (a != nullptr && t.view.Contains(img)) {
      uint64_t pages = 1;
      if (t.pending.Contains(img)) {
        pages = std::min<uint64_t>(kFaultReadAhead, (t.pending.EndOf(img) - img) / kPage);
      }
      uint64_t copied = 0;
      CopyResult r = CopyPages(t, img, pages, copied);
      t.pending.Erase(img, img + copied * kPage);
      stats_.pages_on_fault += copied;
      if (r == CopyResult::kGone) t.gone = true;
      Wake(t, addr);  // in case the page was there already (a copy wakes only what it fills)
    } else {
      uffdio_zeropage z{};
      z.range.start = addr;
      z.range.len = kPage;
      if (::ioctl(t.uffd.get(), UFFDIO_ZEROPAGE, &z) < 0) {
        if (errno == ESRCH || errno == ENOENT) t.gone = true;
        Wake(t, addr);
      } else {
        stats_.zero_pages++;
      }
    }
    fault_us_.push_back(SecondsSince(t0) * 1e6);
    return {};
  }

  void Wake(Target& t, uint64_t addr) {
    uffdio_range r{addr, kPage};
    (void)::ioctl(t.uffd.get(), UFFDIO_WAKE, &r);
  }

  Status BackgroundStep(Target& t) {
    auto [s, e] = t.pending.First();
    if (t.ByImage(s) == nullptr) {  // unmapped since: nothing to deliver there
      t.pending.Erase(s, e);
      return {};
    }
    auto t0 = Clock::now();
    uint64_t copied = 0;
    // Small batches first: the process has just started, and whatever it maps or moves waits
    // for the batch in flight.
    CopyResult r = CopyPages(t, s, std::min(t.batch, (e - s) / kPage), copied);
    t.batch = std::min(t.batch * 2, kBackgroundBatch);
    background_seconds_ += SecondsSince(t0);
    t.pending.Erase(s, s + copied * kPage);
    stats_.pages_background += copied;
    if (r == CopyResult::kGone) t.gone = true;
    return {};
  }

  // Targets done: every page delivered (their userfaultfd is closed, which unregisters it), or
  // the process went away.
  void Reap() {
    if (!failure_.empty()) return;  // kept for KillWaiting
    std::erase_if(targets_, [](const auto& t) { return t->gone || t->pending.empty(); });
    if (next_ >= targets_.size()) next_ = 0;
  }

  LazyPagesOptions opts_;
  std::optional<image::ImageDir> dir_;
  model::ProcessTree tree_;
  std::map<pid_t, std::unique_ptr<Source>> sources_;
  std::unique_ptr<Remote> remote_;
  std::string failure_;  // a source failed: the processes waiting for those pages cannot go on
  uint64_t lazy_pages_ = 0;
  std::string path_;
  UniqueFd listener_;
  std::vector<UniqueFd> conns_;
  std::vector<std::unique_ptr<Target>> targets_;
  size_t received_ = 0;
  size_t next_ = 0;
  Clock::time_point t_handed_;  // of the first process handed over
  bool running_ = false;  // the restore said its processes run (at t_start_): fill from then on
  Clock::time_point t_start_;
  std::vector<std::byte> buf_;
  image::BlockCache cache_;
  LazyPagesStats stats_;
  std::vector<double> fault_us_;
  double background_seconds_ = 0;
};

Status WriteStats(const std::string& dir, const LazyPagesStats& s) {
  nlohmann::json j = {{"processes", s.processes},
                      {"forks", s.forks},
                      {"faults", s.faults},
                      {"pages_on_fault", s.pages_on_fault},
                      {"pages_background", s.pages_background},
                      {"zero_pages", s.zero_pages},
                      {"events", s.events},
                      {"fault_us_median", s.fault_us_median},
                      {"fault_us_p99", s.fault_us_p99},
                      {"background_gibps", s.background_gibps},
                      {"seconds", s.seconds},
                      {"running_notice", s.running_notice}};
  return WriteWholeFile(dir + "/stats-lazy.json", j.dump(2) + "\n");
}

}  // namespace

Result<LazyPagesStats> RunLazyPages(const LazyPagesOptions& opts) {
  Daemon d(opts);
  // Listening first: a restore started at once (migrate-receive does) rebuilds its processes
  // while the images load here, and its hand-over waits in the backlog until we accept it.
  CRYO_TRYV(d.Listen());
  CRYO_TRYV(d.Load());
  auto run = d.Run();
  if (!run) {
    // Their missing pages would read as zeros once our userfaultfds close: end the processes
    // that depend on us rather than let them run on with holes in their memory.
    d.KillWaiting();
    return std::unexpected(std::move(run).error());
  }
  LazyPagesStats stats = *run;
  if (auto s = WriteStats(opts.images_dir, stats); !s) log::Warn("{}", s.error().Message());
  log::Info(
      "lazy-pages: {} processes ({} forked), {} faults, {} pages on fault, {} in the background "
      "({:.2f} GiB/s), {} zero pages, in {:.3f} s",
      stats.processes, stats.forks, stats.faults, stats.pages_on_fault, stats.pages_background,
      stats.background_gibps, stats.zero_pages, stats.seconds);
  return stats;
}

}  // namespace cryo::restore
