// A whole process tree in an image: pstree.img plus core-, mm-, fds- and pagemap-<pid>.img for
// every process. Reading validates everything before anyone uses it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/error.h"
#include "image/image_dir.h"
#include "model/process.h"

namespace cryo::image {

// Where DecodeTree gets its files: an image directory, or in tests a map of bytes.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The whole metadata file `name`.
  virtual Result<std::string> Read(std::string_view name) const = 0;
  // The size of the raw pages file `name`.
  virtual Result<uint64_t> Size(std::string_view name) const = 0;
};

// File name -> whole encoded file.
using EncodedFiles = std::map<std::string, std::string>;

// Every metadata file of `tree`. Fails with kInternal if the tree is not one ReadTree would
// accept (checked as far as possible without the pages files), so a dump never writes an image
// restore refuses.
Result<EncodedFiles> EncodeTree(const model::ProcessTree& tree);
// Decodes and fully validates a tree (see image/validate.h), including the cross-file rules:
// each core's threads are the pstree's thread ids in order, and PRESENT page runs lie inside
// their pages file. Errors name the file and what is wrong.
Result<model::ProcessTree> DecodeTree(const ImageSource& source);

// Writes pstree.img and the per-process files; none of them may exist yet.
Status WriteTree(const ImageDir& dir, const model::ProcessTree& tree);
// DecodeTree over the files of `dir`.
Result<model::ProcessTree> ReadTree(const ImageDir& dir);

}  // namespace cryo::image
