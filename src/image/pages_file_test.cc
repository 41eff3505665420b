#include "image/pages_file.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "base/io.h"
#include "base/unique_fd.h"

namespace cryo::image {
namespace {

using model::PageCodec;

// Content that compresses (a repeated pattern with a page number) except every 7th page
// (random).
std::vector<std::byte> MakeContent(uint64_t pages) {
  std::vector<std::byte> v(pages * 4096);
  std::mt19937_64 rng(42);
  for (uint64_t p = 0; p < pages; p++) {
    for (uint64_t i = 0; i < 4096; i++) {
      v[p * 4096 + i] = p % 7 == 3 ? std::byte(rng()) : std::byte((p * 31 + i % 64) & 0xff);
    }
  }
  return v;
}

class EachCodec : public ::testing::TestWithParam<PageCodec> {};
INSTANTIATE_TEST_SUITE_P(PagesFile, EachCodec, ::testing::Values(PageCodec::kZstd, PageCodec::kLz4),
                         [](const auto& p) { return std::string(CodecName(p.param)); });

UniqueFd MemFile() { return UniqueFd(::memfd_create("pages", MFD_CLOEXEC)); }

uint64_t FileSize(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  return st.st_size;
}

// Writes `content` compressed from two threads, the second half first.
model::PagesCompression WriteCompressed(int fd, const std::vector<std::byte>& content,
                                        PageCodec codec = PageCodec::kZstd) {
  PagesWriter w(fd, "pages-1.img", content.size(), {codec, 1});
  uint64_t block = ChoosePageBlock(content.size());
  uint64_t blocks = (content.size() + block - 1) / block;
  uint64_t half = blocks / 2 * block;
  std::thread t([&] {
    auto s = w.Write(half, {content.data() + half, content.size() - half});
    EXPECT_TRUE(s) << s.error().Message();
  });
  t.join();
  auto s = w.Write(0, {content.data(), half});
  EXPECT_TRUE(s) << s.error().Message();
  auto c = w.Finish();
  EXPECT_TRUE(c) << c.error().Message();
  return *c;
}

TEST_P(EachCodec, CompressedRoundTripReadsAnyRange) {
  auto content = MakeContent(300);  // 4 full blocks of 64 pages and a short one
  UniqueFd fd = MemFile();
  auto c = WriteCompressed(fd.get(), content, GetParam());
  EXPECT_EQ(c.codec, GetParam());
  EXPECT_EQ(c.block_size, kDefaultPageBlock);
  EXPECT_EQ(c.raw_size, content.size());
  ASSERT_EQ(c.blocks.size(), 5u);
  EXPECT_LT(FileSize(fd.get()), content.size() / 2);
  ASSERT_TRUE(ValidatePagesCompression(c, "pages-1.img", FileSize(fd.get())));

  PagesReader r(fd.get(), "pages-1.img", &c);
  BlockCache cache;
  std::vector<std::byte> all(content.size());
  ASSERT_TRUE(r.Read(0, all, cache));
  EXPECT_EQ(all, content);
  // Ranges inside one block, across blocks, and the last page, in any order.
  for (auto [page, n] :
       {std::pair<uint64_t, uint64_t>{299, 1}, {5, 3}, {60, 10}, {0, 300}, {7, 1}}) {
    std::vector<std::byte> got(n * 4096);
    ASSERT_TRUE(r.Read(page * 4096, got, cache));
    EXPECT_TRUE(std::equal(got.begin(), got.end(), content.begin() + page * 4096)) << page;
  }
  std::vector<std::byte> past(4096);
  EXPECT_FALSE(r.Read(300 * 4096, past, cache));
}

// Random pages do not shrink: still stored as a frame, whose checksum catches a flipped byte.
TEST_P(EachCodec, IncompressibleBlockIsStillAFrameWithChecksum) {
  std::vector<std::byte> content(64 * 4096);
  std::mt19937_64 rng(7);
  for (auto& b : content) b = std::byte(rng());
  UniqueFd fd = MemFile();
  PagesWriter w(fd.get(), "p", content.size(), {GetParam(), 1});
  ASSERT_TRUE(w.Write(0, content));
  auto c = w.Finish();
  ASSERT_TRUE(c);
  ASSERT_EQ(c->blocks.size(), 1u);
  EXPECT_GT(c->blocks[0].size, content.size());
  EXPECT_LT(c->blocks[0].size, content.size() + 64);
  PagesReader r(fd.get(), "p", &*c);
  BlockCache cache;
  std::vector<std::byte> got(content.size());
  ASSERT_TRUE(r.Read(0, got, cache));
  EXPECT_EQ(got, content);
  std::byte b{};
  ASSERT_EQ(::pread(fd.get(), &b, 1, 20000), 1);
  b ^= std::byte{4};
  ASSERT_EQ(::pwrite(fd.get(), &b, 1, 20000), 1);
  BlockCache fresh;
  EXPECT_FALSE(r.Read(0, got, fresh));
}

TEST_P(EachCodec, WriterRefusesPartialBlocksAndMissingBlocks) {
  auto content = MakeContent(128);
  UniqueFd fd = MemFile();
  PagesWriter w(fd.get(), "p", content.size(), {GetParam(), 1});
  EXPECT_FALSE(w.Write(4096, {content.data(), 4096}));
  EXPECT_FALSE(w.Write(0, {content.data(), 4096}));  // neither a whole block nor the end
  ASSERT_TRUE(w.Write(0, {content.data(), 64 * 4096}));
  auto c = w.Finish();
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().Message().find("block 1 was never written"), std::string::npos);
}

TEST_P(EachCodec, ValidationRefusesBadIndexes) {
  auto content = MakeContent(100);
  UniqueFd fd = MemFile();
  auto good = WriteCompressed(fd.get(), content, GetParam());
  uint64_t size = FileSize(fd.get());
  ASSERT_TRUE(ValidatePagesCompression(good, "pages-9.img", size));
  auto refused = [&](model::PagesCompression c, uint64_t file_size, std::string_view what) {
    auto s = ValidatePagesCompression(c, "pages-9.img", file_size);
    ASSERT_FALSE(s) << what;
    EXPECT_EQ(s.error().kind(), ErrorKind::kCorruptImage) << what;
    EXPECT_NE(s.error().Message().find("pages-9.img"), std::string::npos) << s.error().Message();
  };
  refused(good, size - 1, "truncated file");
  auto c = good;
  c.blocks[1].offset = ~0ull - 2;
  refused(c, size, "offset overflow");
  c = good;
  c.blocks.pop_back();
  refused(c, size, "a block missing");
  c = good;
  c.block_size = 4096;
  refused(c, size, "block too small");
  c = good;
  c.block_size += 100;
  refused(c, size, "block size not a page multiple");
  c = good;
  c.raw_size += 1;
  refused(c, size, "raw size not a page multiple");
  c = good;
  c.codec = static_cast<PageCodec>(9);
  refused(c, size, "unknown codec");
  c = good;
  c.blocks[0].size = 0;
  refused(c, size, "empty block");
  model::PagesCompression none;
  none.raw_size = 5;
  refused(none, size, "index without codec");
}

// Every single flipped byte of the compressed file, and a stored size that does not decompress
// to the block's length, give an error naming the file, never wrong content.
TEST_P(EachCodec, CorruptBlocksAreErrorsNamingTheFile) {
  auto content = MakeContent(60);  // one block of 60 pages
  UniqueFd fd = MemFile();
  auto c = WriteCompressed(fd.get(), content, GetParam());
  ASSERT_EQ(c.blocks.size(), 1u);
  uint64_t size = FileSize(fd.get());
  std::vector<std::byte> file(size);
  ASSERT_TRUE(PreadFull(fd.get(), file, 0, "test"));
  for (uint64_t i = 0; i < size; i += std::max<uint64_t>(1, size / 97)) {
    std::vector<std::byte> bad = file;
    bad[i] ^= std::byte{0x10};
    UniqueFd bfd = MemFile();
    ASSERT_TRUE(PwriteFull(bfd.get(), bad, 0, "test"));
    PagesReader r(bfd.get(), "pages-5.img", &c);
    BlockCache cache;
    std::vector<std::byte> got(content.size());
    auto s = r.Read(0, got, cache);
    ASSERT_FALSE(s) << "flip at " << i;
    EXPECT_EQ(s.error().kind(), ErrorKind::kCorruptImage);
    EXPECT_NE(s.error().Message().find("pages-5.img"), std::string::npos) << s.error().Message();
  }
  // A shorter stored size: the frame is cut short.
  auto cut = c;
  cut.blocks[0].size -= 7;
  PagesReader r(fd.get(), "pages-5.img", &cut);
  BlockCache cache;
  std::vector<std::byte> got(4096);
  auto s = r.Read(0, got, cache);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().Message().find("pages-5.img: compressed block 0"), std::string::npos)
      << s.error().Message();
}

// A frame that decompresses to fewer bytes than the block holds (an index that claims more raw
// content than was stored) is refused.
TEST_P(EachCodec, DecompressedLengthMustMatch) {
  auto content = MakeContent(96);
  UniqueFd fd = MemFile();
  PagesWriter w(fd.get(), "p", 64 * 4096, {GetParam(), 1});
  ASSERT_TRUE(w.Write(0, {content.data(), 64 * 4096}));
  auto c = w.Finish();
  ASSERT_TRUE(c);
  c->raw_size = 96 * 4096;  // block 0 would now need 96 pages... of which 64 are stored
  c->block_size = 96 * 4096;
  ASSERT_TRUE(ValidatePagesCompression(*c, "pages-2.img", FileSize(fd.get())));
  PagesReader r(fd.get(), "pages-2.img", &*c);
  BlockCache cache;
  std::vector<std::byte> got(96 * 4096);
  auto s = r.Read(0, got, cache);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().Message().find("holds 262144 bytes, not 393216"), std::string::npos)
      << s.error().Message();
}

// One thread writing with both codecs, one after the other (the compression state is kept per
// thread): each image still reads back and zstd frames still carry their checksum.
TEST(PagesFile, CodecsAlternatingOnOneThread) {
  auto content = MakeContent(40);
  for (PageCodec codec : {PageCodec::kLz4, PageCodec::kZstd, PageCodec::kLz4, PageCodec::kZstd}) {
    UniqueFd fd = MemFile();
    PagesWriter w(fd.get(), "p", content.size(), {codec, 1});
    ASSERT_TRUE(w.Write(0, content));
    auto c = w.Finish();
    ASSERT_TRUE(c);
    if (codec == PageCodec::kZstd) {
      std::byte frame[4 + 1];
      ASSERT_EQ(::pread(fd.get(), frame, sizeof frame, 0), 5);
      EXPECT_EQ(std::to_integer<int>(frame[4]) & 0x04, 0x04);  // Content_Checksum_flag
    }
    PagesReader r(fd.get(), "p", &*c);
    BlockCache cache;
    std::vector<std::byte> got(content.size());
    ASSERT_TRUE(r.Read(0, got, cache));
    EXPECT_EQ(got, content);
  }
}

TEST(PagesFile, BlockSizeGrowsForHugeContent) {
  EXPECT_EQ(ChoosePageBlock(1ull << 30), kDefaultPageBlock);
  uint64_t huge = 1ull << 40;
  uint64_t b = ChoosePageBlock(huge);
  EXPECT_LE(huge / b, kMaxPageBlocks);
  EXPECT_GT(b, kDefaultPageBlock);
}

TEST(PagesFile, ParseCodec) {
  EXPECT_EQ(ParseCodec("").value(), PageCodec::kLz4);
  EXPECT_EQ(ParseCodec("lz4").value(), PageCodec::kLz4);
  EXPECT_EQ(ParseCodec("zstd").value(), PageCodec::kZstd);
  EXPECT_EQ(ParseCodec("none").value(), PageCodec::kNone);
  EXPECT_FALSE(ParseCodec("lz5"));
}

}  // namespace
}  // namespace cryo::image
