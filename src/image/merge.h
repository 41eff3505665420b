// Flattening of an incremental image: every page the image takes from its parent chain is
// copied into its own pages file, and the parent link is dropped, so the image no longer needs
// the pre-dump directories.
#pragma once

#include <optional>
#include <string>

#include "base/error.h"
#include "image/pages_file.h"

namespace cryo::image {

struct MergeStats {
  uint64_t pages_from_parents = 0;
  uint64_t pages_total = 0;
  size_t chain_depth = 0;
  uint64_t bytes_before = 0;  // the image's own pages file before and after
  uint64_t bytes_after = 0;
};

// Rewrites pages-, pagemap-<pid>.img and inventory.img of dump image `path` (a full dump, not a
// pre-dump) in place, each through a temporary file and a rename. An image without parent is
// left as it is unless `recompress` asks for another codec than it has. The new pages file is
// written with `recompress`, or without it with the codec the image's own pages file has. The
// chain is validated first (see PageChain::Open); errors name the link.
Result<MergeStats> MergeChain(const std::string& path,
                              const std::optional<CompressOptions>& recompress = std::nullopt);

}  // namespace cryo::image
