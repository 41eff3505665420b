#include "restore/lazy_daemon.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <thread>

#include "base/io.h"
#include "base/log.h"
#include "base/stopwatch.h"
#include "base/writer_first_lock.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/page_chain.h"
#include "image/pages_file.h"
#include "image/tree_io.h"
#include "image/validate.h"
#include "mem/page_wire.h"
#include "restore/lazy.h"
#include "restore/lazy_source.h"
#include "restore/lazy_target.h"
#include "sys/compat_uapi.h"
#include "sys/syscalls.h"

namespace cryo::restore {
namespace {

using Clock = SteadyClock;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kFaultReadAhead = 16;    // pages copied with a faulting one, if lazy too
constexpr uint64_t kBackgroundBatch = 512;  // pages per background UFFDIO_COPY (2 MiB)
// Fill threads for pages in mapped (raw, local) pages files: where each page the fill maps is
// memory the machine must first obtain (a VM's first touch, KERNEL.md), one thread copying is
// the limit. Their batches are smaller: the main thread waits for those in flight before it
// reads a fault (64 pages: 15-800 us, as fresh memory comes fast or slow).
constexpr int kFillThreads = 2;
constexpr uint64_t kFillThreadBatch = 64;

// Without the restore's running notice (restore/lazy.h), the fill starts this long after the
// first hand-over anyway.
constexpr double kRunningFallbackSeconds = 2;

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

  // The main thread: hand-overs, faults, events, and the background fill of pages that are not
  // in a mapped pages file (the fill threads take those). It holds guard_ except in poll().
  Result<LazyPagesStats> Run() {
    auto t_wait = Clock::now();
    struct StopFillAtEnd {  // also on errors: the threads touch targets_
      Daemon* d;
      ~StopFillAtEnd() { d->StopFill(); }
    } stop_fill{this};
    std::unique_lock guard(guard_);
    while (received_ < sources_.size() || !targets_.empty()) {
      CRYO_TRYV(PollOnce(guard));
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
      bool fill = FillAllowed();
      if (fill && !fill_started_) StartFill();
      for (size_t i = 0; fill && i < targets_.size(); i++) {
        Target& t = *targets_[(next_ + i) % targets_.size()];
        if (t.gone || t.pending.empty() || ForFillThreads(t)) continue;
        next_ = (next_ + i + 1) % targets_.size();
        CRYO_TRYV(BackgroundStep(t));
        break;
      }
      Reap();
      fill_cv_.notify_all();  // targets or their pending pages may have changed
    }
    guard.unlock();
    StopFill();
    ::unlink(path_.c_str());
    if (!failure_.empty()) {
      return MakeError(ErrorKind::kInternal, "pages could not be delivered: {}", failure_);
    }
    if (remote_) remote_->Done();
    stats_.seconds = running_ ? SecondsSince(t_start_) : 0;
    // The fill threads' time is their wall-clock span, from their first batch to their last.
    if (fill_pages_ > 0) {
      background_seconds_ += std::chrono::duration<double>(fill_last_ - fill_first_).count();
    }
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
  bool FillAllowed() const {
    return running_ && SecondsSince(t_start_) >= opts_.fill_delay_seconds;
  }

  // Whether the fill threads deliver t's next pending pages: from a mapped pages file, which
  // they can read at once without the main thread's buffers, caches or page-server connection.
  bool ForFillThreads(const Target& t) const {
    return !fillers_.empty() && t.source->Mapped(t.pending.First().first) != nullptr;
  }

  bool HasPending() const {
    if (!FillAllowed()) return false;
    return std::any_of(targets_.begin(), targets_.end(), [&](const auto& t) {
      return !t->gone && !t->pending.empty() && !ForFillThreads(*t);
    });
  }

  // Waits for something to do with `guard` (on guard_) released: the fill threads copy
  // meanwhile. Reading a userfaultfd needs it held: see FillThread.
  Status PollOnce(std::unique_lock<WriterFirstLock>& guard) {
    std::vector<pollfd> fds;
    fds.push_back({listener_.get(), POLLIN, 0});
    fds.push_back({fill_wake_.get(), POLLIN, 0});
    for (const auto& c : conns_) fds.push_back({c.get(), POLLIN, 0});
    for (const auto& t : targets_) fds.push_back({t->uffd.get(), POLLIN, 0});
    bool deferred = std::any_of(targets_.begin(), targets_.end(),
                                [](const auto& t) { return !t->deferred.empty(); });
    int timeout = HasPending() ? 0 : deferred ? 1 : 200;
    guard.unlock();
    int n = ::poll(fds.data(), fds.size(), timeout);
    int poll_errno = errno;
    t_woke_ = Clock::now();
    woke_fresh_ = true;
    guard.lock();
    if (n < 0 && poll_errno != EINTR) return SysError(poll_errno, "poll");
    if (n <= 0) return {};
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      (void)!::read(fill_wake_.get(), &v, sizeof v);
    }
    size_t k = 2;
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
    for (auto& t : targets_) {
      if (!t->gone) RetryDeferred(*t);
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
      // The first message after the poll was there when it returned: it waited for the fill
      // threads' batches too. Later ones came in while we worked.
      Clock::time_point seen = woke_fresh_ ? t_woke_ : Clock::now();
      woke_fresh_ = false;
      switch (msg.event) {
        case UFFD_EVENT_PAGEFAULT:
          CRYO_TRYV(Fault(t, msg.arg.pagefault.address & ~(kPage - 1), seen));
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

  // `seen`: when the daemon could first have known of the fault (see ReadEvents).
  Status Fault(Target& t, uint64_t addr, Clock::time_point seen) {
    stats_.faults++;
    if (!failure_.empty()) return {};  // the processes waiting for pages will be killed
    Answer(t, addr, seen);
    return {};
  }

  // Answers a fault, or defers it while the address space is changing.
  void Answer(Target& t, uint64_t addr, Clock::time_point seen) {
    const Area* a = t.ByCur(addr);
    uint64_t img = a ? a->image + (addr - a->cur) : 0;
    if (a != nullptr && t.view.Contains(img)) {
      uint64_t pages = 1;
      if (t.pending.Contains(img)) {
        pages = std::min<uint64_t>(kFaultReadAhead, (t.pending.EndOf(img) - img) / kPage);
      }
      uint64_t copied = 0;
      CopyResult r = CopyPages(t, img, pages, copied, failure_, read_);
      t.pending.Erase(img, img + copied * kPage);
      stats_.pages_on_fault += copied;
      if (r == CopyResult::kAgain && copied == 0) {
        t.deferred.emplace_back(addr, seen);
        return;
      }
      if (r == CopyResult::kGone) t.gone = true;
      Wake(t, addr);  // in case the page was there already (a copy wakes only what it fills)
    } else {
      uffdio_zeropage z{};
      z.range.start = addr;
      z.range.len = kPage;
      if (::ioctl(t.uffd.get(), UFFDIO_ZEROPAGE, &z) < 0) {
        if (errno == EAGAIN) {
          t.deferred.emplace_back(addr, seen);
          return;
        }
        if (errno == ESRCH || errno == ENOENT) t.gone = true;
        Wake(t, addr);
      } else {
        stats_.zero_pages++;
      }
    }
    fault_us_.push_back(SecondsSince(seen) * 1e6);
  }

  // Deferred faults, once t's userfaultfd has been read to its end. One whose address is in no
  // area any more (the area moved or went away meanwhile) is only woken: the thread faults again
  // where its memory is now, or meets the hole as it would have without us.
  void RetryDeferred(Target& t) {
    auto faults = std::move(t.deferred);
    t.deferred.clear();
    for (auto [addr, seen] : faults) {
      if (t.gone) break;
      if (t.ByCur(addr) == nullptr) {
        Wake(t, addr);
        fault_us_.push_back(SecondsSince(seen) * 1e6);
        continue;
      }
      Answer(t, addr, seen);
    }
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
    CopyResult r = CopyPages(t, s, std::min(t.batch, (e - s) / kPage), copied, failure_, read_);
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

  void StartFill() {
    fill_started_ = true;
    fill_wake_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fill_wake_.valid()) {
      log::Warn("lazy-pages: eventfd: {}: filling from the main thread only", strerror(errno));
      return;
    }
    for (int i = 0; i < kFillThreads; i++) fillers_.emplace_back([this] { FillThread(); });
    log::Debug("lazy-pages: {} fill threads", kFillThreads);
  }

  void StopFill() {
    {
      std::lock_guard l(fill_mu_);
      stop_fill_ = true;
    }
    fill_cv_.notify_all();
    for (auto& th : fillers_) th.join();
    fillers_.clear();
  }

  // A batch claimed by a fill thread: taken out of t.pending until it is copied.
  struct Claim {
    Target* t = nullptr;
    uint64_t img = 0, pages = 0;
  };

  // Under fill_mu_ and a shared hold of guard_. The next mapped pending pages of some target,
  // taken out of its pending set; none if there are none.
  Claim ClaimBatch() {
    for (size_t i = 0; i < targets_.size(); i++) {
      Target& t = *targets_[(fill_next_ + i) % targets_.size()];
      if (t.gone || t.pending.empty()) continue;
      auto [s, e] = t.pending.First();
      if (t.ByImage(s) == nullptr) {  // unmapped since: nothing to deliver there
        t.pending.Erase(s, e);
        continue;
      }
      if (t.source->Mapped(s) == nullptr) continue;  // the main thread's (ForFillThreads)
      fill_next_ = (fill_next_ + i + 1) % targets_.size();
      uint64_t pages = std::min({t.batch, kFillThreadBatch, (e - s) / kPage});
      t.batch = std::min(t.batch * 2, kFillThreadBatch);
      t.pending.Erase(s, s + pages * kPage);
      return {&t, s, pages};
    }
    return {};
  }

  // A fill thread. It copies under a shared hold of guard_, which the main thread takes whole
  // to read a userfaultfd. The kernel lets a process's madvise(MADV_DONTNEED) zap its pages only
  // once we have read the REMOVE event about them (and fails copies with EAGAIN while such an
  // event waits): a copy that began before the read could land after the zap and bring back
  // discarded content. Holding guard_ from the claim of a batch to its end rules that out, and
  // the main thread never sees a batch half done.
  void FillThread() {
    std::shared_lock guard(guard_, std::defer_lock);
    ReadBuffer unused;  // fill threads take pages of mapped pages files only
    for (;;) {
      guard.lock();
      Claim c;
      {
        std::unique_lock l(fill_mu_);
        if (stop_fill_) return;
        c = ClaimBatch();
        if (c.t == nullptr) {
          guard.unlock();
          fill_cv_.wait_for(l, std::chrono::milliseconds(50));
          continue;
        }
        if (fill_pages_ == 0 && fill_first_ == Clock::time_point{}) fill_first_ = Clock::now();
      }
      uint64_t copied = 0;
      std::string fail;
      CopyResult r = CopyPages(*c.t, c.img, c.pages, copied, fail, unused);
      bool wake = false;
      {
        std::lock_guard l(fill_mu_);
        if (copied < c.pages && r != CopyResult::kGone) {
          c.t->pending.Insert(c.img + copied * kPage, c.img + c.pages * kPage);
        }
        stats_.pages_background += copied;
        fill_pages_ += copied;
        fill_last_ = Clock::now();
        if (r == CopyResult::kGone) c.t->gone = true;
        if (!fail.empty() && failure_.empty()) failure_ = fail;
        wake = c.t->gone || c.t->pending.empty() || !fail.empty();
      }
      guard.unlock();
      if (wake) {
        uint64_t one = 1;
        (void)!::write(fill_wake_.get(), &one, sizeof one);
      }
      // An event waits to be read (EAGAIN) or the area moved: let the main thread in first.
      if (r == CopyResult::kAgain) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
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
  ReadBuffer read_;  // the main thread's, for sources that are not mapped
  LazyPagesStats stats_;
  std::vector<double> fault_us_;
  double background_seconds_ = 0;
  Clock::time_point t_woke_;  // when the last poll returned
  bool woke_fresh_ = false;   // no message read since

  // The fill threads (FillThread) and what they share with the main thread.
  WriterFirstLock guard_;  // main: whole, except in poll(); fill threads: shared, per batch
  std::mutex fill_mu_;     // between fill threads: claims, pending sets, stats, failure_
  std::condition_variable fill_cv_;
  bool stop_fill_ = false;
  bool fill_started_ = false;
  std::vector<std::thread> fillers_;
  size_t fill_next_ = 0;
  UniqueFd fill_wake_;  // eventfd: a fill thread tells the main thread a target may be done
  uint64_t fill_pages_ = 0;
  Clock::time_point fill_first_, fill_last_;
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
