#include "image/merge.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "base/io.h"
#include "base/unique_fd.h"
#include "image/codec.h"
#include "image/format.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/page_chain.h"
#include "image/tree_io.h"

namespace cryo::image {
namespace {

// Writes `bytes` as `name` through `name`.merge and a rename.
Status Replace(const ImageDir& dir, const std::string& name, std::string_view bytes) {
  std::string tmp = name + ".merge";
  ::unlinkat(dir.fd(), tmp.c_str(), 0);
  CRYO_TRYV(WriteImageFile(dir, tmp, bytes));
  if (::renameat(dir.fd(), tmp.c_str(), dir.fd(), name.c_str()) < 0) {
    return ErrnoError("rename {} to {}", tmp, name);
  }
  return {};
}

// The merged content, appended in order: written as is, or gathered into whole blocks for a
// PagesWriter.
class MergedPages {
 public:
  MergedPages(int fd, std::string name, uint64_t raw_size, const CompressOptions& opts)
      : fd_(fd), name_(name) {
    uint64_t buf_size = 1 << 20;
    if (opts.codec != model::PageCodec::kNone) {
      writer_.emplace(fd, std::move(name), raw_size, opts);
      buf_size = ChoosePageBlock(raw_size);
    }
    buf_.resize(buf_size);
  }
  // Appends content bytes [offset, offset + len) of `from`.
  Status Append(const PagesReader& from, uint64_t offset, uint64_t len, BlockCache& cache) {
    while (len > 0) {
      uint64_t n = std::min<uint64_t>(len, buf_.size() - fill_);
      CRYO_TRYV(from.Read(offset, {buf_.data() + fill_, n}, cache));
      CRYO_TRYV(Filled(n));
      offset += n;
      len -= n;
    }
    return {};
  }
  // Appends `len` zero bytes.
  Status AppendZeros(uint64_t len) {
    while (len > 0) {
      uint64_t n = std::min<uint64_t>(len, buf_.size() - fill_);
      std::memset(buf_.data() + fill_, 0, n);
      CRYO_TRYV(Filled(n));
      len -= n;
    }
    return {};
  }
  Result<model::PagesCompression> Finish() {
    CRYO_TRYV(Flush());
    if (!writer_) return model::PagesCompression{};
    return writer_->Finish();
  }

 private:
  Status Filled(uint64_t n) {
    fill_ += n;
    return fill_ == buf_.size() ? Flush() : Status{};
  }
  Status Flush() {
    if (fill_ == 0) return {};
    if (writer_) {
      CRYO_TRYV(writer_->Write(written_, {buf_.data(), fill_}));
    } else {
      CRYO_TRYV(PwriteFull(fd_, {buf_.data(), fill_}, written_, name_));
    }
    written_ += fill_;
    fill_ = 0;
    return {};
  }
  int fd_;
  std::string name_;
  std::optional<PagesWriter> writer_;
  std::vector<std::byte> buf_;
  uint64_t fill_ = 0;
  uint64_t written_ = 0;
};

// The pages of one live process of the image, merged from its chain (see MergeChain).
Status MergeProcess(const ImageDir& dir, const std::string& path, const Inventory& inv,
                    model::Process& p, const CompressOptions& compress, MergeStats& stats) {
  auto chain = CRYO_TRY(PageChain::Open(dir, inv, p.pid));
  stats.chain_depth = std::max(stats.chain_depth, chain.depth());

  UniqueFd own_fd(::openat(dir.fd(), p.pages_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!own_fd.valid() && errno != ENOENT) return ErrnoError("open {}", p.pages_file);
  struct stat st {};
  if (own_fd.valid() && ::fstat(own_fd.get(), &st) == 0) stats.bytes_before = st.st_size;
  model::PagesCompression own_c = p.pages_compression;
  PagesReader own(own_fd.get(), path + "/" + p.pages_file, &own_c);
  uint64_t raw_size = 0;
  for (const model::PageRun& r : p.pagemap) {
    if (r.flags & (model::kPagePresent | model::kPageInParent)) raw_size += r.nr_pages << 12;
  }

  std::string tmp = p.pages_file + ".merge";
  ::unlinkat(dir.fd(), tmp.c_str(), 0);
  UniqueFd out(::openat(dir.fd(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoError("create {}", tmp);
  MergedPages merged(out.get(), tmp, raw_size, compress);
  BlockCache cache;
  std::vector<PageSegment> segs;
  uint64_t off = 0;
  for (model::PageRun& r : p.pagemap) {
    uint64_t len = r.nr_pages << 12;
    if (r.flags & model::kPagePresent) {
      CRYO_TRYV(merged.Append(own, r.offset, len, cache));
    } else if (r.flags & model::kPageInParent) {
      segs.clear();
      CRYO_TRYV(chain.Resolve(r.vaddr, len, segs));
      // Pages the chain records as zero give no segment: they are stored as zeros.
      uint64_t at = r.vaddr;
      for (const PageSegment& s : segs) {
        CRYO_TRYV(merged.AppendZeros(s.vaddr - at));
        CRYO_TRYV(merged.Append(chain.pages(s.level), s.offset, s.len, cache));
        at = s.vaddr + s.len;
      }
      CRYO_TRYV(merged.AppendZeros(r.vaddr + len - at));
      stats.pages_from_parents += r.nr_pages;
      r.flags = (r.flags & ~model::kPageInParent) | model::kPagePresent;
    } else {
      continue;
    }
    r.offset = off;
    off += len;
    stats.pages_total += r.nr_pages;
  }
  p.pages_compression = CRYO_TRY(merged.Finish());
  if (::fstat(out.get(), &st) == 0) stats.bytes_after = st.st_size;
  if (::fsync(out.get()) < 0) return ErrnoError("fsync {}", tmp);
  out.Reset();
  if (::renameat(dir.fd(), tmp.c_str(), dir.fd(), p.pages_file.c_str()) < 0) {
    return ErrnoError("rename {} to {}", tmp, p.pages_file);
  }
  std::string pagemap = CRYO_TRY(EncodePagemap(p));
  return Replace(dir, PagemapFileName(p.pid), pagemap);
}

}  // namespace

// Every live process of the tree, each from its own chain; the inventory last.
Result<MergeStats> MergeChain(const std::string& path,
                              const std::optional<CompressOptions>& recompress) {
  auto dir = CRYO_TRY(ImageDir::Open(path));
  Inventory inv = CRYO_TRY(ReadInventory(dir));
  MergeStats stats;
  model::ProcessTree tree =
      CRYO_TRY_CTX(ReadTree(dir), "{} (only a dump image can be merged)", path);
  bool same_codec = true;
  for (const model::Process& p : tree.processes) {
    if (!p.zombie && recompress && p.pages_compression.codec != recompress->codec) {
      same_codec = false;
    }
  }
  if (!inv.parent_dir && same_codec) return stats;
  for (model::Process& p : tree.processes) {
    if (p.zombie) continue;
    CompressOptions compress = recompress.value_or(CompressOptions{p.pages_compression.codec});
    CRYO_TRYV_CTX(MergeProcess(dir, path, inv, p, compress, stats), "pid {}", p.pid);
  }
  inv.parent_dir.reset();
  std::string inventory = CRYO_TRY(EncodeInventory(inv));
  CRYO_TRYV(Replace(dir, std::string(kInventoryFile), inventory));
  return stats;
}

}  // namespace cryo::image
