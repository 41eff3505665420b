// The parent chain of an incremental image: where pages marked in-parent really are. Each link
// (inventory parent_dir) is checked before use: a relative path to an existing image of the same
// root pid, never seen before in the chain (no cycles), at most kMaxChainDepth links. The chain is
// per process: it ends at the first parent without a pagemap of that pid (a tree member that
// appeared since: none of its pages can be in-parent there).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/pages_file.h"
#include "model/process.h"

namespace cryo::image {

inline constexpr size_t kMaxChainDepth = 64;

// A piece of memory whose content is at `offset` of pages file `level` of the chain (0 is the
// nearest parent).
struct PageSegment {
  uint64_t vaddr = 0;
  uint64_t len = 0;
  size_t level = 0;
  uint64_t offset = 0;
};

class PageChain {
 public:
  // Opens every ancestor of image `dir` (whose inventory is `inv`) for process `pid`. An image
  // without parent_dir gives an empty chain. kCorruptImage/kSys errors name the link.
  static Result<PageChain> Open(const ImageDir& dir, const Inventory& inv, pid_t pid);

  size_t depth() const { return levels_.size(); }
  const std::string& path(size_t level) const { return levels_[level].path; }
  // A reader of level `level`'s pages file (plain or compressed); valid while the chain is.
  PagesReader pages(size_t level) const {
    const Level& lv = levels_[level];
    return PagesReader(lv.pages.get(), lv.path + "/" + lv.pm.pages_file, &lv.pm.pages_compression);
  }
  const model::Process& pagemap(size_t level) const { return levels_[level].pm; }

  // Appends, in address order, where the content of [vaddr, vaddr + len) is, starting the search
  // at `level`. Pages the chain records as zero give no segment. kCorruptImage when a page has
  // no content anywhere in the chain.
  Status Resolve(uint64_t vaddr, uint64_t len, std::vector<PageSegment>& out,
                 size_t level = 0) const;

 private:
  struct Level {
    std::string path;
    model::Process pm;  // pid, pages_file and pagemap only
    UniqueFd pages;
    uint64_t pages_size = 0;
  };
  std::vector<Level> levels_;
};

}  // namespace cryo::image
