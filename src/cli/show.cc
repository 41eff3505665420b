#include "cli/show.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdio>

#include "base/error.h"
#include "image/image_dir.h"
#include "image/show.h"

namespace cryo::cli {
namespace {

Result<nlohmann::json> ShowPath(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("{}", path);
  if (S_ISDIR(st.st_mode)) {
    image::ImageDir dir = CRYO_TRY(image::ImageDir::Open(path));
    return image::ShowDir(dir);
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
