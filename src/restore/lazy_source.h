// Where the lazy-pages daemon (restore/lazy_daemon.h) takes the pages it delivers: per process
// of the image, its pages file (mapped when raw), the parent images' chain (--lazy-parent-pages)
// and the source of a post-copy dump (the page server, docs/page-server.md).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "image/image_dir.h"
#include "image/page_chain.h"
#include "image/pages_file.h"
#include "mem/page_scan.h"
#include "model/process.h"

namespace cryo::restore {

// Sorted disjoint [start, end) ranges.
class IntervalSet {
 public:
  void Insert(uint64_t s, uint64_t e);
  void Erase(uint64_t s, uint64_t e);
  bool Contains(uint64_t a) const {
    auto it = m_.upper_bound(a);
    return it != m_.begin() && std::prev(it)->second > a;
  }
  // The end of the range holding `a` (which it contains).
  uint64_t EndOf(uint64_t a) const { return std::prev(m_.upper_bound(a))->second; }
  bool empty() const { return m_.empty(); }
  std::pair<uint64_t, uint64_t> First() const { return *m_.begin(); }

 private:
  std::map<uint64_t, uint64_t> m_;
};

// The source of a post-copy dump (`cryo dump --lazy-pages`), asked one range at a time.
class Remote {
 public:
  // Connects to `host_port`, or takes the connected `fd` (>= 0), and says HELLO.
  Status Connect(const std::string& host_port, int fd);
  // The bytes of pid's image range [addr, addr + out.size()).
  Status Get(pid_t pid, uint64_t addr, std::span<std::byte> out);
  // Tells the source that every page arrived (it may end the process).
  void Done();
  uint64_t bytes() const { return bytes_; }

 private:
  std::string peer_;
  UniqueFd fd_;
  uint64_t bytes_ = 0;
};

// The lazy content of one process of the image.
struct Source {
  const model::Process* p = nullptr;
  UniqueFd fd;
  std::unique_ptr<image::PagesReader> reader;
  Remote* remote = nullptr;               // for LAZY-only runs
  std::optional<image::PageChain> chain;  // for IN_PARENT runs (--lazy-parent-pages)
  std::vector<mem::PageRange> lazy;
  // The raw pages file, mapped (null: compressed, or none).
  const std::byte* map = nullptr;
  size_t map_len = 0;

  Source() = default;
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  ~Source();

  // Opens p's pages file in `dir` (named for errors under `dir_path`), and maps it if raw: then
  // UFFDIO_COPY takes the pages from the page cache directly.
  Status OpenPages(const image::ImageDir& dir, const std::string& dir_path);
  // The run holding image address `a` (a lazy page: some run holds it).
  const model::PageRun& RunAt(uint64_t a) const;
  // Where image page `a` (in a PRESENT run) is in the mapped pages file, or null.
  const std::byte* Mapped(uint64_t a) const;
  // Image bytes [a, a + out.size()), inside one run.
  Status Read(uint64_t a, std::span<std::byte> out, image::BlockCache& cache) const;
  // The byte offset of image page `a` in the pages file's content, and how many bytes from
  // there stay in the same run (a PRESENT run holds `a`: it is lazy).
  std::pair<uint64_t, uint64_t> Offset(uint64_t a) const;

 private:
  // From the parent images (--lazy-parent-pages); pages the chain records as zero read as zeros.
  Status ReadFromChain(uint64_t a, std::span<std::byte> out, image::BlockCache& cache) const;
};

}  // namespace cryo::restore
