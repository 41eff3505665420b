#include "cli/show.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdio>

#include "base/error.h"
#include "image/image_dir.h"
#include "image/inventory.h"
#include "image/page_chain.h"
#include "image/show.h"

namespace cryo::cli {
namespace {

// The parent chain of an incremental image (pre-dump rounds), nearest first; a broken chain is
// shown as an error rather than failing the whole show.
void AddChain(const image::ImageDir& dir, nlohmann::json& j) {
  auto inv = image::ReadInventory(dir);
  if (!inv || !inv->parent_dir) return;
  auto chain = image::PageChain::Open(dir, *inv, inv->root_pid);
  if (!chain) {
    j["parent_chain_error"] = chain.error().Message();
    return;
  }
  nlohmann::json links = nlohmann::json::array();
  for (size_t i = 0; i < chain->depth(); i++) {
    uint64_t stored = 0, in_parent = 0;
    for (const auto& r : chain->pagemap(i).pagemap) {
      if (r.flags & model::kPagePresent) stored += r.nr_pages;
      if (r.flags & model::kPageInParent) in_parent += r.nr_pages;
    }
    links.push_back({{"path", chain->path(i)},
                     {"pages_file", chain->pagemap(i).pages_file},
                     {"pages_stored", stored},
                     {"pages_in_parent", in_parent}});
  }
  j["parent_chain"] = links;
}

Result<nlohmann::json> ShowPath(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("{}", path);
  if (S_ISDIR(st.st_mode)) {
    image::ImageDir dir = CRYO_TRY(image::ImageDir::Open(path));
    nlohmann::json j = CRYO_TRY(image::ShowDir(dir));
    AddChain(dir, j);
    return j;
  }
  size_t slash = path.find_last_of('/');
  std::string dir_path = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  image::ImageDir dir = CRYO_TRY(image::ImageDir::Open(dir_path));
  return image::ShowFile(dir, name);
}

}  // namespace

int RunShow(const std::string& path) {
  auto json = ShowPath(path);
  if (!json) {
    fmt::print(stderr, "cryo show: {}\n", json.error().Message());
    return 1;
  }
  // The replace handler cannot throw; show output is valid UTF-8 anyway (see proto_json.h).
  std::string text = json->dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  fmt::print("{}\n", text);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace cryo::cli
