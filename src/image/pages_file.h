// Pages files, plain or compressed (docs/image-format.md §6): checking a block index against its
// file, reading any range of page content (each block independently, so any page is reachable
// without reading the ones before it), and writing compressed blocks from several threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "model/process.h"

namespace cryo::image {

// Bounds of a block's raw length, and the default.
inline constexpr uint64_t kMinPageBlock = 64ull << 10;
inline constexpr uint64_t kMaxPageBlock = 16ull << 20;
inline constexpr uint64_t kDefaultPageBlock = 256ull << 10;
inline constexpr size_t kMaxPageBlocks = 1u << 20;  // the limit of Pagemap.blocks

// What a writer of pages files is asked for (cryo dump/pre-dump/merge --compress).
struct CompressOptions {
  model::PageCodec codec = model::PageCodec::kNone;
  // zstd level (negative: faster, larger), or lz4: 1 and below fast (more acceleration the
  // lower), 3 and above high compression.
  int level = 1;
};

// Parses the --compress value: "lz4" (or empty: the default codec), "zstd" or "none".
Result<model::PageCodec> ParseCodec(std::string_view name);
std::string_view CodecName(model::PageCodec codec);

// Checks a pagemap's compression fields against the size of its pages file: known codec; for
// none, no block fields; else a page-multiple block size within bounds, a page-multiple raw
// size, exactly one block per block_size of it, each stored inside the file and no longer than
// the codec can produce for it. kCorruptImage naming `pages_file`.
Status ValidatePagesCompression(const model::PagesCompression& c, std::string_view pages_file,
                                uint64_t file_size);
// The bytes of page content that runs may address: the file size, or the raw size.
uint64_t PagesContentSize(const model::PagesCompression& c, uint64_t file_size);

// One thread's state for reading compressed pages: a decompression context and the last block
// read, so that runs read one after another from the same block decompress it once.
class BlockCache {
 public:
  BlockCache();
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

 private:
  friend class PagesReader;
  struct State;
  std::unique_ptr<State> s_;
};

// Reads page content from one pages file. The compression must have been validated against
// the file (ValidatePagesCompression). Read() is safe from several threads, each with its own
// cache. Corrupt or truncated blocks are kCorruptImage errors naming the file and block.
class PagesReader {
 public:
  PagesReader(int fd, std::string name, const model::PagesCompression* c)
      : fd_(fd), name_(std::move(name)), c_(c) {}
  // Fills `dst` with content bytes [offset, offset + dst.size()).
  Status Read(uint64_t offset, std::span<std::byte> dst, BlockCache& cache) const;
  const std::string& name() const { return name_; }

 private:
  Status ReadBlock(size_t i, std::byte* out, uint64_t raw_len, BlockCache& cache) const;
  Status DecodeLz4(size_t i, std::byte* out, uint64_t raw_len, BlockCache& cache) const;
  int fd_;
  std::string name_;
  const model::PagesCompression* c_;
};

// Writes content of a known raw size into a pages file as compressed blocks. Write() may be
// called from several threads at once, each with whole blocks (the last block of the content
// may be short); blocks are appended to the file in whatever order they come.
class PagesWriter {
 public:
  PagesWriter(int fd, std::string name, uint64_t raw_size, const CompressOptions& opts);
  // Compresses and stores content bytes [offset, offset + data.size()): offset a multiple of the
  // block size, the length too unless the range ends the content.
  Status Write(uint64_t offset, std::span<const std::byte> data);
  // Checks that every block was written; returns the index to record in the pagemap.
  Result<model::PagesCompression> Finish();
  uint64_t stored_bytes() const { return cursor_.load(); }

 private:
  Status WriteLz4(uint64_t offset, std::span<const std::byte> data, std::vector<std::byte>& out);
  int fd_;
  std::string name_;
  CompressOptions opts_;
  model::PagesCompression c_;
  std::atomic<uint64_t> cursor_{0};
};

// The block size a writer uses for `raw_size` bytes: the default, doubled until the block count
// fits the limit.
uint64_t ChoosePageBlock(uint64_t raw_size);

}  // namespace cryo::image
