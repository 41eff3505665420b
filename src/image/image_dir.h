// ImageDir: the directory an image lives in, held open so that every file is reached relative to
// it (openat), and the reading and writing of whole files inside it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace cryo::image {

class ImageDir {
 public:
  // Makes `path` (and missing parents) with mode 0700, or takes an existing directory that is
  // empty or holds only cryo's own non-image files (*.log, *.json); then chmods it to 0700.
  // A directory already holding *.img files or foreign files is kInvalidArg.
  static Result<ImageDir> Create(const std::string& path);
  // Opens an existing directory (kSys with ENOENT/ENOTDIR if it is not one).
  static Result<ImageDir> Open(const std::string& path);

  const std::string& path() const { return path_; }
  // An O_PATH|O_DIRECTORY descriptor, for the *at() calls.
  int fd() const { return fd_.get(); }

 private:
  ImageDir(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  std::string path_;
  UniqueFd fd_;
};

// Writes a new file `name` (a plain name, no '/') with mode 0600; an existing file is an error
// (EEXIST), and a failed write leaves no file behind.
Status WriteImageFile(const ImageDir& dir, std::string_view name, std::string_view bytes);
// Reads a whole regular file of at most `max_size` bytes. Symlinks, FIFOs, devices and larger
// files are kCorruptImage; a missing file is kSys/ENOENT.
Result<std::string> ReadImageFile(const ImageDir& dir, std::string_view name, uint64_t max_size);
// Size of the regular file `name` (not following symlinks; anything else is kCorruptImage).
Result<uint64_t> ImageFileSize(const ImageDir& dir, std::string_view name);
// Names of the entries in the directory, sorted, without "." and "..".
Result<std::vector<std::string>> ListImageDir(const ImageDir& dir);

}  // namespace cryo::image
