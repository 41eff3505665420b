#include "dump/dump_memory.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "base/log.h"
#include "base/stopwatch.h"
#include "base/unique_fd.h"
#include "mem/page_scan.h"

namespace cryo::dump {
namespace {
using Clock = SteadyClock;
bool IsPrivate(model::VmaKind k) {
  return k == model::VmaKind::kAnonPrivate || k == model::VmaKind::kFilePrivate;
}

// Builds the pagemap and copy list, run by run, in address order.
class PlanBuilder {
 public:
  PlanBuilder(model::Process& p, MemoryPlan& plan, MemoryStats& stats)
      : p_(p), plan_(plan), stats_(stats) {}
  void Store(mem::PageRange r, bool readable) {
    if (r.start >= r.end) return;
    plan_.sources.push_back({r, readable, offset_});
    p_.pagemap.push_back({r.start, r.pages(), offset_, model::kPagePresent});
    offset_ += r.end - r.start;
    stats_.pages_written += r.pages();
  }
  void InParent(mem::PageRange r) {
    if (r.start >= r.end) return;
    stats_.pages_unchanged += r.pages();
    auto& m = p_.pagemap;
    if (can_merge_ && !m.empty() && m.back().flags == model::kPageInParent &&
        m.back().vaddr + (m.back().nr_pages << 12) == r.start) {
      m.back().nr_pages += r.pages();
      return;
    }
    m.push_back({r.start, r.pages(), 0, model::kPageInParent});
    can_merge_ = true;
  }
  void Inherit(mem::PageRange r) {
    if (r.start >= r.end) return;
    stats_.pages_inherited += r.pages();
    p_.pagemap.push_back({r.start, r.pages(), 0, model::kPageInherited});
  }
  // Runs never span two vmas.
  void NextVma() { can_merge_ = false; }

 private:
  model::Process& p_;
  MemoryPlan& plan_;
  MemoryStats& stats_;
  uint64_t offset_ = 0;
  bool can_merge_ = false;
};

// Finds the pages a forked process still shares with its parent, frozen as well: same address,
// same physical page (the PFN in /proc/PID/pagemap, which root reads). Those are recorded as
// inherited instead of stored; restore forks the process from its parent with them in place.
class CowMatcher {
 public:
  static Result<CowMatcher> Open(pid_t pid, const model::Process* parent) {
    CowMatcher m;
    if (parent == nullptr) return m;
    m.parent_ = parent;
    for (pid_t q : {pid, parent->pid}) {
      std::string path = fmt::format("/proc/{}/pagemap", q);
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoError("open {}", path);
      (q == pid ? m.own_ : m.parent_fd_) = std::move(fd);
    }
    return m;
  }

  // The parts of `data` (sorted, inside vma v) that are the parent's very pages.
  Result<std::vector<mem::PageRange>> Shared(const model::Vma& v,
                                             const std::vector<mem::PageRange>& data) {
    std::vector<mem::PageRange> out;
    if (parent_ == nullptr || model::InheritSource(parent_->vmas, v) == nullptr) return out;
    for (mem::PageRange d : data) {
      for (uint64_t at = d.start; at < d.end;) {
        uint64_t end = std::min(d.end, at + (mem::kPagemapBatch << 12));
        CRYO_TRYV(mem::ReadPagemap(own_.get(), at, end, own_buf_));
        CRYO_TRYV(mem::ReadPagemap(parent_fd_.get(), at, end, parent_buf_));
        for (size_t i = 0; i < own_buf_.size(); i++) {
          const mem::PagemapEntry &a = own_buf_[i], &b = parent_buf_[i];
          if (!a.present() || !b.present() || a.pfn() == 0 || a.pfn() != b.pfn()) continue;
          uint64_t page = at + (i << 12);
          if (!out.empty() && out.back().end == page) {
            out.back().end += 4096;
          } else {
            out.push_back({page, page + 4096});
          }
        }
        at = end;
      }
    }
    return out;
  }

 private:
  const model::Process* parent_ = nullptr;
  UniqueFd own_, parent_fd_;
  std::vector<mem::PagemapEntry> own_buf_, parent_buf_;
};

// Calls own(range) for the parts of each data range outside `shared` (a sorted subset of them)
// and b.Inherit for the parts inside, in address order.
template <typename Own>
Status EachOwnOrInherited(PlanBuilder& b, const std::vector<mem::PageRange>& data,
                          const std::vector<mem::PageRange>& shared, Own own) {
  auto s = shared.begin();
  for (mem::PageRange d : data) {
    uint64_t pos = d.start;
    for (; s != shared.end() && s->start < d.end; ++s) {
      CRYO_TRYV(own(mem::PageRange{pos, s->start}));
      b.Inherit(*s);
      pos = s->end;
    }
    CRYO_TRYV(own(mem::PageRange{pos, d.end}));
  }
  return {};
}

// Appends to `out` the parts of [start, end) inside (`inside`) or outside the sorted `ranges`.
void Intersect(const std::vector<mem::PageRange>& ranges, mem::PageRange r, bool inside,
               std::vector<mem::PageRange>& out) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), r.start,
                             [](uint64_t a, const mem::PageRange& x) { return a < x.end; });
  uint64_t pos = r.start;
  for (; pos < r.end && it != ranges.end() && it->start < r.end; ++it) {
    uint64_t s = std::max(it->start, pos), e = std::min(it->end, r.end);
    if (!inside && pos < s) out.push_back({pos, s});
    if (inside && s < e) out.push_back({s, e});
    pos = std::max(pos, e);
  }
  if (!inside && pos < r.end) out.push_back({pos, r.end});
}

// Data pages of a tracked vma: written ones, and those the parent has no content for, are
// stored; the others are in the parent image.
void SplitByWritten(PlanBuilder& b, const std::vector<mem::PageRange>& data,
                    const std::vector<mem::PageRange>& written,
                    const std::vector<mem::PageRange>& coverage, bool readable) {
  std::vector<mem::PageRange> pieces;
  for (mem::PageRange d : data) {
    pieces.clear();
    Intersect(written, d, false, pieces);  // unchanged since the parent round
    uint64_t pos = d.start;
    for (mem::PageRange u : pieces) {
      b.Store({pos, u.start}, readable);
      std::vector<mem::PageRange> in, out;
      Intersect(coverage, u, true, in);
      uint64_t q = u.start;
      for (mem::PageRange c : in) {
        b.Store({q, c.start}, readable);
        b.InParent(c);
        q = c.end;
      }
      b.Store({q, u.end}, readable);
      pos = u.end;
    }
    b.Store({pos, d.end}, readable);
  }
}

// The pages of tracked vma [start, end) written since the parent round. Hot ranges (unprotected)
// count as written whole; the rest is scanned and re-protected in the same walk. Chunks found
// almost entirely written become hot: unprotected, so that a process rewriting them does not
// take a fault per page every round (about 1 us each here) for pages that are copied anyway.
Result<std::vector<mem::PageRange>> WrittenPages(TrackingRound& round, int pagemap_fd,
                                                 uint64_t start, uint64_t end, MemoryStats& stats) {
  std::vector<mem::PageRange> hot, armed, written;
  if (!round.cool) Intersect(round.hot, {start, end}, true, hot);
  Intersect(hot, {start, end}, false, armed);
  for (mem::PageRange a : armed) {
    size_t first = written.size();
    CRYO_TRYV(mem::ScanWrittenAndReprotect(pagemap_fd, a.start, a.end, written));
    // Written pages per aligned chunk, clipped to the armed range.
    uint64_t chunk = 0, count = 0;
    auto flush = [&]() -> Status {
      uint64_t cs = std::max(chunk, a.start), ce = std::min(chunk + kHotChunk, a.end);
      if (count == 0 || static_cast<double>(count) < kHotFraction * ((ce - cs) >> 12)) return {};
      // Re-armed hot ranges look written whole in their cooling round: judged in the next one.
      std::vector<mem::PageRange> was_hot;
      if (round.cool) Intersect(round.hot, {cs, ce}, true, was_hot);
      if (!was_hot.empty()) return {};
      CRYO_TRYV(round.tracker->Unprotect(cs, ce));
      hot.push_back({cs, ce});
      return {};
    };
    for (size_t i = first; i < written.size(); i++) {
      for (uint64_t pos = written[i].start; pos < written[i].end;) {
        uint64_t c = pos & ~(kHotChunk - 1);
        if (c != chunk) {
          CRYO_TRYV(flush());
          chunk = c;
          count = 0;
        }
        uint64_t e = std::min(written[i].end, c + kHotChunk);
        count += (e - pos) >> 12;
        pos = e;
      }
    }
    CRYO_TRYV(flush());
  }
  auto by_start = [](const mem::PageRange& x, const mem::PageRange& y) {
    return x.start < y.start;
  };
  std::sort(hot.begin(), hot.end(), by_start);
  for (mem::PageRange h : hot) {
    stats.pages_hot += h.pages();
    if (!round.hot_out.empty() && round.hot_out.back().end == h.start) {
      round.hot_out.back().end = h.end;
    } else {
      round.hot_out.push_back(h);
    }
  }
  written.insert(written.end(), hot.begin(), hot.end());
  std::sort(written.begin(), written.end(), by_start);
  return written;
}

// process_vm_readv pins the pages it reads, and the kernel gives a process its own copy of a
// page shared copy-on-write before it lets it be pinned: reading a forked tree that way would
// copy every page its processes share (at 0.2-0.6 GiB/s here), in their memory, and leave them
// unshared. /proc/PID/mem reads without pinning: the sources' pages that may be shared go
// through it (marked not readable), the others keep the faster process_vm_readv.
Status RouteSharedPages(int pagemap_fd, std::vector<mem::CopySource>& sources) {
  std::vector<mem::CopySource> out;
  std::vector<mem::PageRange> shared;
  for (const mem::CopySource& s : sources) {
    shared.clear();
    if (s.readable) CRYO_TRYV(mem::ScanSharedPages(pagemap_fd, s.range, shared));
    if (shared.empty()) {
      out.push_back(s);
      continue;
    }
    uint64_t pos = s.range.start;
    auto piece = [&](uint64_t start, uint64_t end, bool readable) {
      if (start < end) {
        out.push_back({{start, end}, readable, s.file_offset + (start - s.range.start)});
      }
    };
    for (mem::PageRange r : shared) {
      piece(pos, r.start, true);
      piece(r.start, r.end, false);
      pos = r.end;
    }
    piece(pos, s.range.end, true);
  }
  sources = std::move(out);
  return {};
}

}  // namespace

Result<MemoryPlan> PlanMemory(model::Process& p, std::span<const UffdOwner> owners,
                              TrackingRound* round, MemoryStats& stats,
                              const model::Process* tree_parent) {
  auto t0 = Clock::now();
  std::string pagemap_path = fmt::format("/proc/{}/pagemap", p.pid);
  UniqueFd pagemap(::open(pagemap_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) return ErrnoError("open {}", pagemap_path);
  auto cow = CRYO_TRY(CowMatcher::Open(p.pid, tree_parent));

  MemoryPlan plan;
  PlanBuilder b(p, plan, stats);
  p.pagemap.clear();
  p.pages_file = fmt::format("pages-{}.img", p.pid);
  for (size_t i = 0; i < p.vmas.size(); i++) {
    const model::Vma& v = p.vmas[i];
    if (!IsPrivate(v.kind)) continue;
    b.NextVma();
    UffdOwner owner = i < owners.size() ? owners[i] : UffdOwner::kNone;
    bool readable = (v.prot & PROT_READ) != 0;
    stats.pages_scanned += v.length() >> 12;
    // A final dump (tracking ends with it) needs no re-protection: one walk finds the data pages
    // and those written since the parent round (hot ranges, unprotected, among them).
    bool final_round = round != nullptr && round->tracker != nullptr && owner == UffdOwner::kOurs &&
                       !round->track_new;
    std::vector<mem::PageRange> data, final_written;
    CRYO_TRYV_CTX(
        mem::ScanDataAndWritten(pagemap.get(), v.start, v.end, data,
                                final_round ? &final_written : nullptr, &stats.pages_zero),
        "pid {}", p.pid);
    auto shared = CRYO_TRY_CTX(cow.Shared(v, data), "pid {}", p.pid);
    auto store = [&](mem::PageRange r) -> Status {
      b.Store(r, readable);
      return {};
    };
    if (round == nullptr || round->tracker == nullptr) {
      CRYO_TRYV(EachOwnOrInherited(b, data, shared, store));
      continue;
    }
    if (owner == UffdOwner::kOurs) {
      auto written = final_round
                         ? std::move(final_written)
                         : CRYO_TRY_CTX(WrittenPages(*round, pagemap.get(), v.start, v.end, stats),
                                        "pid {}", p.pid);
      log::Debug("{:#x}-{:#x}: {} data runs, {} written runs{}", v.start, v.end, data.size(),
                 written.size(),
                 written.empty() ? "" : fmt::format(" from {:#x}", written[0].start));
      if (log::Enabled(log::Level::kDebug)) {
        for (const auto& w : written) log::Debug("  written {:#x}-{:#x}", w.start, w.end);
      }
      if (round->has_parent) {
        CRYO_TRYV(EachOwnOrInherited(b, data, shared, [&](mem::PageRange r) -> Status {
          if (r.start < r.end) SplitByWritten(b, {r}, written, round->parent_coverage, readable);
          return {};
        }));
      } else {
        CRYO_TRYV(EachOwnOrInherited(b, data, shared, store));
      }
      round->tracked.push_back({v.start, v.end});
      continue;
    }
    // Not tracked since the parent: new, moved, or the process's own userfaultfd range.
    CRYO_TRYV(EachOwnOrInherited(b, data, shared, store));
    if (owner == UffdOwner::kProcess) {
      log::Info(
          "pid {}: {:#x}-{:#x} is registered with the process's own userfaultfd: copied in "
          "full",
          p.pid, v.start, v.end);
      continue;
    }
    if (!round->track_new) continue;
    if (CRYO_TRY(round->tracker->Track(v.start, v.end))) {
      round->tracked.push_back({v.start, v.end});
    } else {
      log::Info("pid {}: {:#x}-{:#x} {} cannot be tracked: copied in full every round", p.pid,
                v.start, v.end, v.name);
    }
  }
  CRYO_TRYV_CTX(RouteSharedPages(pagemap.get(), plan.sources), "pid {}", p.pid);
  stats.scan_seconds += SecondsSince(t0);
  return plan;
}

std::vector<mem::PageRange> LeaveLazy(model::Process& p, MemoryPlan& plan) {
  std::vector<mem::PageRange> lazy;
  std::vector<mem::CopySource> kept;
  uint64_t offset = 0;
  size_t vi = 0;
  auto src = plan.sources.begin();
  for (model::PageRun& r : p.pagemap) {
    if (!(r.flags & model::kPagePresent)) continue;
    uint64_t end = r.vaddr + (r.nr_pages << 12);
    while (vi < p.vmas.size() && p.vmas[vi].end <= r.vaddr) vi++;
    bool leave = vi < p.vmas.size() && model::LazyEligible(p.vmas[vi]);
    // The sources of this run (RouteSharedPages may have cut it): file offsets inside it.
    for (; src != plan.sources.end() && src->file_offset < r.offset + (end - r.vaddr); ++src) {
      if (leave) continue;
      mem::CopySource s = *src;
      s.file_offset = offset + (s.file_offset - r.offset);
      kept.push_back(s);
    }
    if (leave) {
      r.flags = model::kPageLazy;
      r.offset = 0;
      if (!lazy.empty() && lazy.back().end == r.vaddr) {
        lazy.back().end = end;
      } else {
        lazy.push_back({r.vaddr, end});
      }
    } else {
      r.offset = offset;
      offset += end - r.vaddr;
    }
  }
  plan.sources = std::move(kept);
  return lazy;
}

Status CopyMemory(int dir_fd, model::Process& p, const MemoryPlan& plan, MemoryStats& stats,
                  bool running) {
  auto t1 = Clock::now();
  UniqueFd out(
      ::openat(dir_fd, p.pages_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoError("create {}", p.pages_file);
  std::string mem_path = fmt::format("/proc/{}/mem", p.pid);
  UniqueFd mem(::open(mem_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.valid()) return ErrnoError("open {}", mem_path);
  p.pages_compression = {};
  if (plan.compress.codec == model::PageCodec::kNone) {
    auto copy = CRYO_TRY_CTX(mem::CopyPages(p.pid, mem.get(), plan.sources, out.get(), running),
                             "copy memory of pid {}", p.pid);
    stats.bytes_written += copy.bytes;
    stats.bytes_content += copy.bytes;
    stats.pages_gone += copy.pages_gone;
  } else {
    uint64_t raw = 0;
    for (const auto& s : plan.sources) raw += s.range.end - s.range.start;
    image::PagesWriter writer(out.get(), p.pages_file, raw, plan.compress);
    // The workers compress what they copied: each batch is whole blocks of the writer.
    auto sink = [&writer](uint64_t offset, std::span<const std::byte> data) {
      return writer.Write(offset, data);
    };
    auto copy = CRYO_TRY_CTX(mem::CopyPagesTo(p.pid, mem.get(), plan.sources, sink,
                                              image::ChoosePageBlock(raw), running),
                             "copy memory of pid {}", p.pid);
    p.pages_compression = CRYO_TRY_CTX(writer.Finish(), "pid {}", p.pid);
    stats.bytes_content += copy.bytes;
    stats.bytes_written += writer.stored_bytes();
    stats.codec = plan.compress.codec;
    stats.pages_gone += copy.pages_gone;
    log::Info("pid {}: {} bytes of pages stored in {} ({} {} blocks, ratio {:.2f})", p.pid,
              copy.bytes, writer.stored_bytes(), p.pages_compression.blocks.size(),
              image::CodecName(plan.compress.codec),
              writer.stored_bytes() ? double(copy.bytes) / double(writer.stored_bytes()) : 1.0);
  }
  stats.copy_seconds += SecondsSince(t1);  // (summed over the processes of a tree)
  return {};
}

Result<MemoryStats> DumpMemory(int dir_fd, model::Process& p) {
  MemoryStats stats;
  auto plan = CRYO_TRY(PlanMemory(p, {}, nullptr, stats));
  CRYO_TRYV(CopyMemory(dir_fd, p, plan, stats));
  return stats;
}

}  // namespace cryo::dump
