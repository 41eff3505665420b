#include "restore/lazy_target.h"

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"

namespace cryo::restore {
namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

CopyResult CopyPages(Target& t, uint64_t img, uint64_t pages, uint64_t& copied, std::string& fail,
                     ReadBuffer& read) {
  copied = 0;
  const Area* a = t.ByImage(img);
  if (a == nullptr) return CopyResult::kDone;
  uint64_t left = t.source->Offset(img).second;
  pages = std::min({pages, left / kPage, (a->image + a->len - img) / kPage});
  // A raw pages file is mapped: UFFDIO_COPY takes the pages from the page cache directly.
  const std::byte* src = t.source->Mapped(img);
  if (src == nullptr) {
    read.bytes.resize(pages * kPage);
    if (auto r = t.source->Read(img, {read.bytes.data(), read.bytes.size()}, read.cache); !r) {
      log::Error("lazy-pages: {}", r.error().Message());
      fail = r.error().Message();
      return CopyResult::kGone;
    }
    src = read.bytes.data();
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
    fail = fmt::format("pid {}: UFFDIO_COPY to {:#x} ({} pages): {}", t.pid, c.dst, pages - done,
                       strerror(errno));
    return CopyResult::kGone;
  }
  copied = done;
  return CopyResult::kDone;
}

void Wake(Target& t, uint64_t addr) {
  uffdio_range r{addr, kPage};
  (void)::ioctl(t.uffd.get(), UFFDIO_WAKE, &r);
}

}  // namespace cryo::restore
