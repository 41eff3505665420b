#include "mem/page_copy.h"

#include <limits.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/io.h"
#include "base/parallel.h"

namespace cryo::mem {
namespace {

constexpr uint64_t kBatchBytes = 1ull << 20;

// A staging buffer, pre-faulted once so that copies into it never take page faults.
class Staging {
 public:
  explicit Staging(uint64_t size) : size_(size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
  }
  ~Staging() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  std::byte* data() const { return data_; }

 private:
  uint64_t size_;
  std::byte* data_ = nullptr;
};

// One batch: pieces of consecutive sources that land at consecutive file offsets.
struct Piece {
  uint64_t addr;
  uint64_t len;
  bool readable;
};

// Reads remote [addr, addr + len) through /proc/PID/mem. With `running`, the process may unmap or
// drop pages while we copy: pages that cannot be read are stored as zeros and counted (their
// content is never used: a page that comes back later is new to the dirty tracker, so the next
// round stores it).
Status ReadMem(int mem_fd, std::byte* dst, uint64_t len, uint64_t addr, bool running,
               CopyStats& stats) {
  stats.mem_reads++;
  auto r = PreadFull(mem_fd, {dst, len}, addr, "/proc/pid/mem");
  if (r || !running) return r;
  for (uint64_t off = 0; off < len; off += 4096) {
    ssize_t n = ::pread(mem_fd, dst + off, 4096, static_cast<off_t>(addr + off));
    if (n != 4096) {
      std::memset(dst + off, 0, 4096);
      stats.pages_gone++;
    }
  }
  return {};
}

Status ReadPieces(pid_t pid, int mem_fd, const std::vector<Piece>& pieces, std::byte* buf,
                  bool running, CopyStats& stats) {
  std::vector<iovec> remote;
  uint64_t buf_off = 0;
  auto flush_remote = [&](uint64_t local_start, uint64_t len) -> Status {
    if (remote.empty()) return {};
    uint64_t done = 0;
    size_t first = 0;
    // process_vm_readv stops at the first failing page: retry what is left through /proc/PID/mem.
    iovec local{buf + local_start, len};
    ssize_t n = ::process_vm_readv(pid, &local, 1, remote.data(), remote.size(), 0);
    stats.vm_readv_calls++;
    if (n < 0) n = 0;
    done = static_cast<uint64_t>(n);
    if (done < len) {
      uint64_t skip = done;
      for (first = 0; first < remote.size() && skip >= remote[first].iov_len; first++) {
        skip -= remote[first].iov_len;
      }
      uint64_t dst = local_start + done;
      for (size_t i = first; i < remote.size(); i++) {
        uint64_t a = reinterpret_cast<uint64_t>(remote[i].iov_base) + (i == first ? skip : 0);
        uint64_t l = remote[i].iov_len - (i == first ? skip : 0);
        CRYO_TRYV_CTX(ReadMem(mem_fd, buf + dst, l, a, running, stats), "pid {}", pid);
        dst += l;
      }
    }
    remote.clear();
    return {};
  };
  uint64_t run_start = 0;
  for (const Piece& p : pieces) {
    if (p.readable) {
      if (remote.empty()) run_start = buf_off;
      remote.push_back({reinterpret_cast<void*>(p.addr), p.len});
      if (remote.size() == IOV_MAX) {
        CRYO_TRYV(flush_remote(run_start, buf_off + p.len - run_start));
      }
    } else {
      CRYO_TRYV(flush_remote(run_start, buf_off - run_start));
      CRYO_TRYV_CTX(ReadMem(mem_fd, buf + buf_off, p.len, p.addr, running, stats), "pid {}", pid);
    }
    buf_off += p.len;
  }
  return flush_remote(run_start, buf_off - run_start);
}

// Copies a list of sources (consecutive in the file or not) with one staging buffer of `batch`
// bytes. A batch never crosses a multiple of `batch` in the output.
Status CopySerial(pid_t pid, int mem_fd, std::span<const CopySource> sources, const PageSink& sink,
                  uint64_t batch, bool running, CopyStats& stats) {
  Staging staging(batch);
  if (staging.data() == nullptr) return ErrnoError("map staging buffer");
  std::vector<Piece> pieces;
  uint64_t batch_file_off = 0, batch_len = 0;
  auto flush = [&]() -> Status {
    if (batch_len == 0) return {};
    CRYO_TRYV(ReadPieces(pid, mem_fd, pieces, staging.data(), running, stats));
    CRYO_TRYV(sink(batch_file_off, {staging.data(), batch_len}));
    stats.bytes += batch_len;
    pieces.clear();
    batch_len = 0;
    return {};
  };
  for (const CopySource& s : sources) {
    uint64_t addr = s.range.start;
    uint64_t file_off = s.file_offset;
    while (addr < s.range.end) {
      if (batch_len > 0 && batch_file_off + batch_len != file_off) CRYO_TRYV(flush());
      if (batch_len == 0) batch_file_off = file_off;
      uint64_t len = std::min(s.range.end - addr, batch - file_off % batch);
      pieces.push_back({addr, len, s.readable});
      batch_len += len;
      addr += len;
      file_off += len;
      if (file_off % batch == 0) CRYO_TRYV(flush());
    }
  }
  return flush();
}

// Splits `sources` into `n` lists of about equal bytes, cutting ranges at multiples of `align`.
std::vector<std::vector<CopySource>> Partition(std::span<const CopySource> sources, size_t n,
                                               uint64_t align) {
  uint64_t total = 0;
  for (const auto& s : sources) total += s.range.end - s.range.start;
  uint64_t share = (total / n + align - 1) & ~(align - 1);
  std::vector<std::vector<CopySource>> parts(n);
  size_t part = 0;
  uint64_t in_part = 0;
  for (CopySource s : sources) {
    while (s.range.start < s.range.end) {
      uint64_t room = part + 1 == n ? ~0ull : share - in_part;
      uint64_t len = std::min(s.range.end - s.range.start, room);
      parts[part].push_back({{s.range.start, s.range.start + len}, s.readable, s.file_offset});
      s.range.start += len;
      s.file_offset += len;
      in_part += len;
      if (in_part == share && part + 1 < n) {
        part++;
        in_part = 0;
      }
    }
  }
  return parts;
}

}  // namespace

Result<CopyStats> CopyPagesTo(pid_t pid, int mem_fd, std::span<const CopySource> sources,
                              const PageSink& sink, uint64_t align, bool running) {
  // One core cannot keep up with the allocation of fresh page-cache pages: split the work.
  constexpr uint64_t kParallelFrom = 64ull << 20;
  uint64_t total = 0;
  for (const auto& s : sources) total += s.range.end - s.range.start;
  size_t workers = total >= kParallelFrom ? CopyWorkers() : 1;
  auto parts = Partition(sources, workers, std::max<uint64_t>(align, 4096));
  uint64_t batch = std::max(kBatchBytes, align);
  std::vector<CopyStats> per(workers);
  CRYO_TRYV(ParallelFor(workers, [&](size_t i) {
    return CopySerial(pid, mem_fd, parts[i], sink, batch, running, per[i]);
  }));
  CopyStats stats;
  for (const auto& p : per) {
    stats.bytes += p.bytes;
    stats.vm_readv_calls += p.vm_readv_calls;
    stats.mem_reads += p.mem_reads;
    stats.pages_gone += p.pages_gone;
  }
  return stats;
}

Result<CopyStats> CopyPages(pid_t pid, int mem_fd, std::span<const CopySource> sources, int out_fd,
                            bool running) {
  auto write = [out_fd](uint64_t offset, std::span<const std::byte> data) {
    return PwriteFull(out_fd, data, offset, "pages file");
  };
  return CopyPagesTo(pid, mem_fd, sources, write, 4096, running);
}

}  // namespace cryo::mem
