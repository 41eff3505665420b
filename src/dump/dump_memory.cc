#include "dump/dump_memory.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <chrono>
#include <vector>

#include "base/unique_fd.h"
#include "mem/page_copy.h"
#include "mem/page_scan.h"

namespace cryo::dump {
namespace {
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
bool IsPrivate(model::VmaKind k) {
  return k == model::VmaKind::kAnonPrivate || k == model::VmaKind::kFilePrivate;
}
}  // namespace

Result<MemoryStats> DumpMemory(int dir_fd, model::Process& p) {
  MemoryStats stats;
  auto t0 = Clock::now();
  std::string pagemap_path = fmt::format("/proc/{}/pagemap", p.pid);
  UniqueFd pagemap(::open(pagemap_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) return ErrnoError("open {}", pagemap_path);

  std::vector<mem::CopySource> sources;
  uint64_t offset = 0;
  for (const model::Vma& v : p.vmas) {
    if (!IsPrivate(v.kind)) continue;
    stats.pages_scanned += v.length() >> 12;
    std::vector<mem::PageRange> ranges;
    CRYO_TRYV_CTX(mem::ScanDataPages(pagemap.get(), v.start, v.end, ranges), "pid {}", p.pid);
    for (const auto& r : ranges) {
      sources.push_back({r, (v.prot & PROT_READ) != 0, offset});
      p.pagemap.push_back({r.start, r.pages(), offset, model::kPagePresent});
      offset += r.end - r.start;
    }
  }
  stats.scan_seconds = Since(t0);

  auto t1 = Clock::now();
  p.pages_file = fmt::format("pages-{}.img", p.pid);
  UniqueFd out(
      ::openat(dir_fd, p.pages_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoError("create {}", p.pages_file);
  std::string mem_path = fmt::format("/proc/{}/mem", p.pid);
  UniqueFd mem(::open(mem_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.valid()) return ErrnoError("open {}", mem_path);
  auto copy = CRYO_TRY_CTX(mem::CopyPages(p.pid, mem.get(), sources, out.get()),
                           "copy memory of pid {}", p.pid);
  stats.copy_seconds = Since(t1);
  stats.bytes_written = copy.bytes;
  stats.pages_written = copy.bytes >> 12;
  return stats;
}

}  // namespace cryo::dump
