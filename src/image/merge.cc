#include "image/merge.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

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

Status CopyRange(int from, uint64_t from_off, int to, uint64_t to_off, uint64_t len,
                 std::vector<std::byte>& buf) {
  while (len > 0) {
    uint64_t n = std::min<uint64_t>(len, buf.size());
    CRYO_TRYV(PreadFull(from, {buf.data(), n}, from_off, "pages file"));
    CRYO_TRYV(PwriteFull(to, {buf.data(), n}, to_off, "merged pages file"));
    from_off += n;
    to_off += n;
    len -= n;
  }
  return {};
}

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

}  // namespace

Result<MergeStats> MergeChain(const std::string& path) {
  auto dir = CRYO_TRY(ImageDir::Open(path));
  Inventory inv = CRYO_TRY(ReadInventory(dir));
  MergeStats stats;
  if (!inv.parent_dir) return stats;
  model::ProcessTree tree =
      CRYO_TRY_CTX(ReadTree(dir), "{} (only a dump image can be merged)", path);
  model::Process& p = tree.processes.at(0);
  auto chain = CRYO_TRY(PageChain::Open(dir, inv, p.pid));
  stats.chain_depth = chain.depth();

  UniqueFd own(::openat(dir.fd(), p.pages_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!own.valid()) return ErrnoError("open {}", p.pages_file);
  std::string tmp = p.pages_file + ".merge";
  ::unlinkat(dir.fd(), tmp.c_str(), 0);
  UniqueFd out(::openat(dir.fd(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoError("create {}", tmp);
  std::vector<std::byte> buf(1 << 20);
  std::vector<PageSegment> segs;
  uint64_t off = 0;
  for (model::PageRun& r : p.pagemap) {
    uint64_t len = r.nr_pages << 12;
    if (r.flags & model::kPagePresent) {
      CRYO_TRYV(CopyRange(own.get(), r.offset, out.get(), off, len, buf));
    } else if (r.flags & model::kPageInParent) {
      segs.clear();
      CRYO_TRYV(chain.Resolve(r.vaddr, len, segs));
      for (const PageSegment& s : segs) {
        CRYO_TRYV(CopyRange(chain.pages_fd(s.level), s.offset, out.get(), off + (s.vaddr - r.vaddr),
                            s.len, buf));
      }
      stats.pages_from_parents += r.nr_pages;
      r.flags = (r.flags & ~model::kPageInParent) | model::kPagePresent;
    } else {
      continue;
    }
    // Pages the chain records as zero were not written: the file keeps zeros (a hole) there.
    r.offset = off;
    off += len;
    stats.pages_total += r.nr_pages;
  }
  if (::ftruncate(out.get(), static_cast<off_t>(off)) < 0) return ErrnoError("size {}", tmp);
  if (::fsync(out.get()) < 0) return ErrnoError("fsync {}", tmp);
  out.Reset();
  if (::renameat(dir.fd(), tmp.c_str(), dir.fd(), p.pages_file.c_str()) < 0) {
    return ErrnoError("rename {} to {}", tmp, p.pages_file);
  }
  std::string pagemap = CRYO_TRY(EncodePagemap(p));
  CRYO_TRYV(Replace(dir, PagemapFileName(p.pid), pagemap));
  inv.parent_dir.reset();
  std::string inventory = CRYO_TRY(EncodeInventory(inv));
  CRYO_TRYV(Replace(dir, std::string(kInventoryFile), inventory));
  return stats;
}

}  // namespace cryo::image
