// Image files as JSON for `cryo show` (like CRIU's crit decode): structure is checked (header,
// CRC, limits), semantics are not, so that a damaged-but-parsable image can still be looked at.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "image/image_dir.h"

namespace cryo::image {

// One file of `dir` (a plain name). A metadata file gives {"magic", "version", "kind",
// "payload_size", "entry": <message>}; a raw pages file (pages-*.img) gives
// {"kind": "pages", "size", "pages"}. Errors name the file.
Result<nlohmann::json> ShowFile(const ImageDir& dir, const std::string& file_name);

// Every *.img file of `dir`, as {"<file name>": ShowFile(...), ...}; other files (logs, stats)
// are left out. Fails on the first file that cannot be shown.
Result<nlohmann::json> ShowDir(const ImageDir& dir);

}  // namespace cryo::image
