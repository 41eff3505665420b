// `cryo show PATH`: an image directory, or one file in it, printed as JSON (like CRIU's crit).
#pragma once

#include <string>

namespace cryo::cli {

// PATH is an image directory (every *.img file is shown) or a file inside one. Prints pretty
// JSON on stdout and returns 0; on error prints "cryo show: <message>" on stderr and returns 1.
int RunShow(const std::string& path);

}  // namespace cryo::cli
