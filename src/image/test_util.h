// Shared by the image tests: a rich process tree with every field set, a temporary directory,
// and an in-memory ImageSource for fault injection.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "image/tree_io.h"
#include "model/process.h"

namespace cryo::image::testing {

// Per-process timers, flags and seccomp chains for a process with threads 100 and 101.
model::TaskControl MakeTaskControl();
// Two processes (root 100 with threads 100 and 101, child 102), every field non-default,
// including a vma name that is not UTF-8. Pages files needed: see kRichPagesSizes.
model::ProcessTree MakeRichTree();
// Sizes of the pages files MakeRichTree's pagemaps refer to.
std::map<std::string, uint64_t> RichPagesSizes();

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes a file of `size` bytes (content irrelevant) at `path`.
void WriteSizedFile(const std::string& path, uint64_t size);

// Files and pages-file sizes held in memory.
class MapSource : public ImageSource {
 public:
  MapSource(EncodedFiles files, std::map<std::string, uint64_t> sizes)
      : files_(std::move(files)), sizes_(std::move(sizes)) {}
  Result<std::string> Read(std::string_view name) const override;
  Result<uint64_t> Size(std::string_view name) const override;
  EncodedFiles& files() { return files_; }
  std::map<std::string, uint64_t>& sizes() { return sizes_; }

 private:
  EncodedFiles files_;
  std::map<std::string, uint64_t> sizes_;
};

}  // namespace cryo::image::testing
