#include "image/pages_file.h"

#include <lz4frame.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <optional>

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
  std::optional<int> zstd_level;  // what cctx is set up for
  std::vector<std::byte> out;
};

// One block as one lz4 frame with its content size and a checksum of the content (XXH32).
LZ4F_preferences_t Lz4Prefs(uint64_t raw, int level) {
  LZ4F_preferences_t prefs;
  std::memset(&prefs, 0, sizeof prefs);
  prefs.frameInfo.blockSizeID = raw <= (256u << 10) ? LZ4F_max256KB : LZ4F_max4MB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  prefs.frameInfo.contentSize = raw;
  prefs.compressionLevel = level < 3 ? level - 1 : level;  // 1 (and below) = fast modes
  return prefs;
}

// The most a frame of `raw` content bytes can take with `codec`.
uint64_t FrameBound(model::PageCodec codec, uint64_t raw) {
  if (codec == model::PageCodec::kZstd) return ZSTD_compressBound(raw);
  LZ4F_preferences_t prefs = Lz4Prefs(raw, 1);
  return LZ4F_compressFrameBound(raw, &prefs);
}

}  // namespace

Result<model::PageCodec> ParseCodec(std::string_view name) {
  if (name.empty() || name == "lz4") return model::PageCodec::kLz4;
  if (name == "zstd") return model::PageCodec::kZstd;
  if (name == "none") return model::PageCodec::kNone;
  return MakeError(ErrorKind::kInvalidArg, "unknown compression '{}' (lz4, zstd or none)", name);
}

std::string_view CodecName(model::PageCodec codec) {
  switch (codec) {
    case model::PageCodec::kNone:
      return "none";
    case model::PageCodec::kZstd:
      return "zstd";
    case model::PageCodec::kLz4:
      return "lz4";
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
  if (c.codec != model::PageCodec::kZstd && c.codec != model::PageCodec::kLz4) {
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
    if (b.size == 0 || b.size > FrameBound(c.codec, raw)) {
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
  struct Lz4Deleter {
    void operator()(LZ4F_dctx* d) const { LZ4F_freeDecompressionContext(d); }
  };
  static LZ4F_dctx* NewLz4() {
    LZ4F_dctx* d = nullptr;
    return LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)) ? nullptr : d;
  }
  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx{ZSTD_createDCtx()};
  std::unique_ptr<LZ4F_dctx, Lz4Deleter> lz4{NewLz4()};
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
  if (c_->codec == model::PageCodec::kLz4) return DecodeLz4(i, out, raw_len, cache);
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

Status PagesReader::DecodeLz4(size_t i, std::byte* out, uint64_t raw_len, BlockCache& cache) const {
  auto& s = *cache.s_;
  const model::PageBlock& b = c_->blocks[i];
  if (s.lz4 == nullptr) return MakeError(ErrorKind::kSys, "lz4: no decompression context");
  size_t out_len = raw_len, in_len = b.size;
  size_t r = LZ4F_decompress(s.lz4.get(), out, &out_len, s.stored.data(), &in_len, nullptr);
  if (LZ4F_isError(r)) {
    LZ4F_resetDecompressionContext(s.lz4.get());  // not resumable after an error
    return Corrupt("{}: compressed block {} ({} bytes at offset {}): {}", name_, i, b.size,
                   b.offset, LZ4F_getErrorName(r));
  }
  if (r != 0 || in_len != b.size) {  // the frame goes on past its content, or ends early
    LZ4F_resetDecompressionContext(s.lz4.get());
    return Corrupt("{}: compressed block {} is not one frame of {} bytes", name_, i, raw_len);
  }
  if (out_len != raw_len) {
    return Corrupt("{}: compressed block {} holds {} bytes, not {}", name_, i, out_len, raw_len);
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
  if (opts_.codec == model::PageCodec::kLz4) return WriteLz4(offset, data, st.out);
  if (st.cctx == nullptr) return MakeError(ErrorKind::kSys, "zstd: no compression context");
  if (st.zstd_level != opts_.level) {
    ZSTD_CCtx_reset(st.cctx.get(), ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(st.cctx.get(), ZSTD_c_compressionLevel, opts_.level);
    ZSTD_CCtx_setParameter(st.cctx.get(), ZSTD_c_checksumFlag, 1);
    st.zstd_level = opts_.level;
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

Status PagesWriter::WriteLz4(uint64_t offset, std::span<const std::byte> data,
                             std::vector<std::byte>& out) {
  for (uint64_t pos = offset; pos < offset + data.size(); pos += c_.block_size) {
    size_t i = pos / c_.block_size;
    uint64_t raw = BlockRawLen(c_, i);
    LZ4F_preferences_t prefs = Lz4Prefs(raw, opts_.level);
    out.resize(std::max<size_t>(out.size(), LZ4F_compressFrameBound(raw, &prefs)));
    size_t n =
        LZ4F_compressFrame(out.data(), out.size(), data.data() + (pos - offset), raw, &prefs);
    if (LZ4F_isError(n)) {
      return MakeError(ErrorKind::kSys, "{}: compress block {}: {}", name_, i,
                       LZ4F_getErrorName(n));
    }
    uint64_t at = cursor_.fetch_add(n);
    CRYO_TRYV(PwriteFull(fd_, {out.data(), n}, at, name_));
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
