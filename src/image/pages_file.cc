#include "image/pages_file.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "base/io.h"

namespace cryo::image {
namespace {

constexpr uint64_t kPage = 4096;

template <typename... Args>
std::unexpected<Error> Corrupt(fmt::format_string<Args...> f, Args&&... args) {
  return MakeError(ErrorKind::kCorruptImage, f, std::forward<Args>(args)...);
}

uint64_t BlockRawLen(const model::PagesCompression& c, size_t i) {
  return std::min(c.block_size, c.raw_size - i * c.block_size);
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

// Each copy worker compresses with its own context and output buffer, kept for its lifetime.
struct CompressState {
  std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx{ZSTD_createCCtx()};
  int level = 0;
  std::vector<std::byte> out;
};

}  // namespace

Result<model::PageCodec> ParseCodec(std::string_view name) {
  if (name.empty() || name == "zstd") return model::PageCodec::kZstd;
  if (name == "none") return model::PageCodec::kNone;
  return MakeError(ErrorKind::kInvalidArg, "unknown compression '{}' (zstd or none)", name);
}

std::string_view CodecName(model::PageCodec codec) {
  switch (codec) {
    case model::PageCodec::kNone:
      return "none";
    case model::PageCodec::kZstd:
      return "zstd";
  }
  return "unknown";
}

uint64_t ChoosePageBlock(uint64_t raw_size) {
  uint64_t b = kDefaultPageBlock;
  while (b < kMaxPageBlock && (raw_size + b - 1) / b > kMaxPageBlocks) b *= 2;
  return b;
}

Status ValidatePagesCompression(const model::PagesCompression& c, std::string_view pages_file,
                                uint64_t file_size) {
  if (c.codec == model::PageCodec::kNone) {
    if (c.block_size != 0 || c.raw_size != 0 || !c.blocks.empty()) {
      return Corrupt("{} is not compressed but has a block index", pages_file);
    }
    return {};
  }
  if (c.codec != model::PageCodec::kZstd) {
    return Corrupt("{}: unknown compression codec {}", pages_file, static_cast<uint32_t>(c.codec));
  }
  if (c.block_size % kPage != 0 || c.block_size < kMinPageBlock || c.block_size > kMaxPageBlock) {
    return Corrupt("{}: block size {} is not a page multiple in [{}, {}]", pages_file, c.block_size,
                   kMinPageBlock, kMaxPageBlock);
  }
  if (c.raw_size % kPage != 0) {
    return Corrupt("{}: raw size {} is not a page multiple", pages_file, c.raw_size);
  }
  uint64_t want = (c.raw_size + c.block_size - 1) / c.block_size;
  if (c.blocks.size() != want) {
    return Corrupt("{}: {} blocks indexed, {} needed for {} bytes", pages_file, c.blocks.size(),
                   want, c.raw_size);
  }
  for (size_t i = 0; i < c.blocks.size(); i++) {
    const model::PageBlock& b = c.blocks[i];
    uint64_t raw = BlockRawLen(c, i);
    if (b.size == 0 || b.size > ZSTD_compressBound(raw)) {
      return Corrupt("{}: block {} has an impossible stored size {} for {} bytes", pages_file, i,
                     b.size, raw);
    }
    if (b.offset > file_size || b.size > file_size - b.offset) {
      return Corrupt("{}: block {} ({} bytes at offset {}) is not inside the file ({} bytes)",
                     pages_file, i, b.size, b.offset, file_size);
    }
  }
  return {};
}

uint64_t PagesContentSize(const model::PagesCompression& c, uint64_t file_size) {
  return c.codec == model::PageCodec::kNone ? file_size : c.raw_size;
}

struct BlockCache::State {
  struct DCtxDeleter {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
  };
  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx{ZSTD_createDCtx()};
  std::vector<std::byte> stored;
  std::vector<std::byte> block;  // raw content of block `cached`
  const model::PagesCompression* owner = nullptr;
  size_t cached = SIZE_MAX;
};

BlockCache::BlockCache() : s_(std::make_unique<State>()) {}
BlockCache::~BlockCache() = default;

Status PagesReader::ReadBlock(size_t i, std::byte* out, uint64_t raw_len, BlockCache& cache) const {
  const model::PageBlock& b = c_->blocks[i];
  auto& s = *cache.s_;
  s.stored.resize(b.size);
  CRYO_TRYV(PreadFull(fd_, {s.stored.data(), b.size}, b.offset, name_));
  if (s.dctx == nullptr) return MakeError(ErrorKind::kSys, "zstd: no decompression context");
  size_t n = ZSTD_decompressDCtx(s.dctx.get(), out, raw_len, s.stored.data(), b.size);
  if (ZSTD_isError(n)) {
    return Corrupt("{}: compressed block {} ({} bytes at offset {}): {}", name_, i, b.size,
                   b.offset, ZSTD_getErrorName(n));
  }
  if (n != raw_len) {
    return Corrupt("{}: compressed block {} holds {} bytes, not {}", name_, i, n, raw_len);
  }
  return {};
}

Status PagesReader::Read(uint64_t offset, std::span<std::byte> dst, BlockCache& cache) const {
  if (c_ == nullptr || c_->codec == model::PageCodec::kNone) {
    return PreadFull(fd_, dst, offset, name_);
  }
  if (offset > c_->raw_size || dst.size() > c_->raw_size - offset) {
    return Corrupt("{}: {} bytes at {} are past its content ({} bytes)", name_, dst.size(), offset,
                   c_->raw_size);
  }
  auto& s = *cache.s_;
  uint64_t pos = offset, end = offset + dst.size();
  while (pos < end) {
    size_t i = pos / c_->block_size;
    uint64_t bstart = i * c_->block_size;
    uint64_t raw = BlockRawLen(*c_, i);
    uint64_t from = pos - bstart, to = std::min(raw, end - bstart);
    std::byte* out = dst.data() + (pos - offset);
    if (from == 0 && to == raw && !(s.owner == c_ && s.cached == i)) {
      CRYO_TRYV(ReadBlock(i, out, raw, cache));  // a whole block: straight into place
    } else {
      if (s.owner != c_ || s.cached != i) {
        s.block.resize(raw);
        s.cached = SIZE_MAX;
        CRYO_TRYV(ReadBlock(i, s.block.data(), raw, cache));
        s.owner = c_;
        s.cached = i;
      }
      std::memcpy(out, s.block.data() + from, to - from);
    }
    pos = bstart + to;
  }
  return {};
}

PagesWriter::PagesWriter(int fd, std::string name, uint64_t raw_size, const CompressOptions& opts)
    : fd_(fd), name_(std::move(name)), opts_(opts) {
  c_.codec = opts.codec;
  c_.block_size = ChoosePageBlock(raw_size);
  c_.raw_size = raw_size;
  c_.blocks.resize((raw_size + c_.block_size - 1) / c_.block_size);
}

Status PagesWriter::Write(uint64_t offset, std::span<const std::byte> data) {
  uint64_t end = offset + data.size();
  if (offset % c_.block_size != 0 || end > c_.raw_size ||
      (data.size() % c_.block_size != 0 && end != c_.raw_size)) {
    return MakeError(ErrorKind::kInvalidArg, "{}: {} bytes at {} are not whole blocks of {}", name_,
                     data.size(), offset, c_.block_size);
  }
  thread_local CompressState st;
  if (st.cctx == nullptr) return MakeError(ErrorKind::kSys, "zstd: no compression context");
  if (st.level != opts_.level || st.out.empty()) {
    ZSTD_CCtx_reset(st.cctx.get(), ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(st.cctx.get(), ZSTD_c_compressionLevel, opts_.level);
    ZSTD_CCtx_setParameter(st.cctx.get(), ZSTD_c_checksumFlag, 1);
    st.level = opts_.level;
  }
  for (uint64_t pos = offset; pos < end; pos += c_.block_size) {
    size_t i = pos / c_.block_size;
    uint64_t raw = BlockRawLen(c_, i);
    const std::byte* src = data.data() + (pos - offset);
    st.out.resize(std::max<size_t>(st.out.size(), ZSTD_compressBound(raw)));
    size_t n = ZSTD_compress2(st.cctx.get(), st.out.data(), st.out.size(), src, raw);
    if (ZSTD_isError(n)) {
      return MakeError(ErrorKind::kSys, "{}: compress block {}: {}", name_, i,
                       ZSTD_getErrorName(n));
    }
    // Even a block zstd cannot shrink is stored as a frame (of raw blocks, a few bytes
    // longer): its checksum is what catches damage to the stored pages.
    uint64_t at = cursor_.fetch_add(n);
    CRYO_TRYV(PwriteFull(fd_, {st.out.data(), n}, at, name_));
    c_.blocks[i] = {at, static_cast<uint32_t>(n)};
  }
  return {};
}

Result<model::PagesCompression> PagesWriter::Finish() {
  for (size_t i = 0; i < c_.blocks.size(); i++) {
    if (c_.blocks[i].size == 0) {
      return MakeError(ErrorKind::kInvalidArg, "{}: block {} was never written", name_, i);
    }
  }
  return c_;
}

}  // namespace cryo::image
