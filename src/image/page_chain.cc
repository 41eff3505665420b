#include "image/page_chain.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

#include "image/codec.h"
#include "image/format.h"
#include "image/validate.h"

namespace cryo::image {
namespace {

template <typename... Args>
std::unexpected<Error> Corrupt(fmt::format_string<Args...> f, Args&&... args) {
  return MakeError(ErrorKind::kCorruptImage, f, std::forward<Args>(args)...);
}

// Runs sorted, page-aligned, flags known, stored runs inside the pages file.
Status CheckRuns(const model::Process& pm, uint64_t pages_size) {
  CRYO_TRYV(ValidatePagesCompression(pm.pages_compression, pm.pages_file, pages_size));
  pages_size = PagesContentSize(pm.pages_compression, pages_size);
  uint64_t prev_end = 0;
  for (size_t i = 0; i < pm.pagemap.size(); i++) {
    const model::PageRun& r = pm.pagemap[i];
    constexpr uint64_t kTop = 1ull << 47;
    if (r.vaddr & 4095 || r.vaddr >= kTop || r.nr_pages == 0 ||
        r.nr_pages > (kTop - r.vaddr) >> 12 || r.vaddr < prev_end) {
      return Corrupt("page run {} is not a sorted page range", i);
    }
    prev_end = r.vaddr + (r.nr_pages << 12);
    uint32_t content = r.flags & (model::kPagePresent | model::kPageZero | model::kPageInParent |
                                  model::kPageInherited);
    if (std::popcount(content) != 1) return Corrupt("page run {}: flags {:#x}", i, r.flags);
    if (r.flags & model::kPagePresent) {
      uint64_t len = r.nr_pages << 12;
      if (r.offset & 4095 || r.offset > pages_size || len > pages_size - r.offset) {
        return Corrupt("page run {} is not inside {}", i, pm.pages_file);
      }
    }
  }
  return {};
}

}  // namespace

Result<PageChain> PageChain::Open(const ImageDir& dir, const Inventory& inv, pid_t pid) {
  PageChain chain;
  std::set<std::pair<dev_t, ino_t>> seen;
  auto identity = [](const std::string& path) -> Result<std::pair<dev_t, ino_t>> {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return ErrnoError("parent image {}", path);
    return std::pair{st.st_dev, st.st_ino};
  };
  seen.insert(CRYO_TRY(identity(dir.path())));
  std::string cur = dir.path();
  std::optional<std::string> rel = inv.parent_dir;
  while (rel) {
    if (rel->empty() || (*rel)[0] == '/' || rel->find('\0') != std::string::npos) {
      return Corrupt("{}: parent_dir '{}' is not a relative path", cur, *rel);
    }
    if (chain.levels_.size() == kMaxChainDepth) {
      return Corrupt("{}: parent chain longer than {} images", dir.path(), kMaxChainDepth);
    }
    std::string path = cur + "/" + *rel;
    if (!seen.insert(CRYO_TRY(identity(path))).second) {
      return Corrupt("parent chain of {} loops back at {}", dir.path(), path);
    }
    auto pdir = CRYO_TRY_CTX(ImageDir::Open(path), "parent image of {}", cur);
    Inventory pinv = CRYO_TRY_CTX(ReadInventory(pdir), "parent image {}", path);
    if (pinv.root_pid != inv.root_pid) {
      return Corrupt("parent image {} is of pid {}, not {}", path, pinv.root_pid, inv.root_pid);
    }
    // A tree member that did not exist yet (or was not tracked) in that round: its chain ends.
    if (::faccessat(pdir.fd(), PagemapFileName(pid).c_str(), F_OK, 0) != 0) {
      if (errno != ENOENT) return ErrnoError("{}/{}", path, PagemapFileName(pid));
      break;
    }
    Level lv;
    lv.path = path;
    lv.pm.pid = pid;
    std::string pm_file = CRYO_TRY(ReadImageFile(pdir, PagemapFileName(pid), kMaxPayloadSize + 64));
    CRYO_TRYV_CTX(DecodePagemap(pm_file, lv.pm), "{}/{}", path, PagemapFileName(pid));
    CRYO_TRYV_CTX(ValidatePagesFileName(lv.pm.pages_file), "{}", path);
    lv.pages_size = CRYO_TRY(ImageFileSize(pdir, lv.pm.pages_file));
    CRYO_TRYV_CTX(CheckRuns(lv.pm, lv.pages_size), "{}/{}", path, PagemapFileName(pid));
    lv.pages.Reset(::openat(pdir.fd(), lv.pm.pages_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!lv.pages.valid()) return ErrnoError("open {}/{}", path, lv.pm.pages_file);
    chain.levels_.push_back(std::move(lv));
    cur = path;
    rel = pinv.parent_dir;
  }
  return chain;
}

Status PageChain::Resolve(uint64_t vaddr, uint64_t len, std::vector<PageSegment>& out,
                          size_t level) const {
  if (level >= levels_.size()) {
    return Corrupt("pages {:#x}-{:#x} are marked in-parent but the image has no parent", vaddr,
                   vaddr + len);
  }
  const Level& lv = levels_[level];
  const auto& runs = lv.pm.pagemap;
  uint64_t pos = vaddr, end = vaddr + len;
  auto it = std::upper_bound(
      runs.begin(), runs.end(), pos,
      [](uint64_t a, const model::PageRun& r) { return a < r.vaddr + (r.nr_pages << 12); });
  for (; pos < end; ++it) {
    if (it == runs.end() || it->vaddr > pos) {
      return Corrupt("page {:#x} has no content in the parent chain (missing from {})", pos,
                     lv.path);
    }
    uint64_t piece_end = std::min(end, it->vaddr + (it->nr_pages << 12));
    if (it->flags & model::kPagePresent) {
      out.push_back({pos, piece_end - pos, level, it->offset + (pos - it->vaddr)});
    } else if (it->flags & model::kPageInParent) {
      CRYO_TRYV(Resolve(pos, piece_end - pos, out, level + 1));
    } else if (it->flags & model::kPageInherited) {
      // A dump never leaves such pages to its parent image (they are not its coverage).
      return Corrupt("page {:#x} is inherited from the tree parent in {}, not in the chain", pos,
                     lv.path);
    }
    pos = piece_end;
  }
  return {};
}

}  // namespace cryo::image
