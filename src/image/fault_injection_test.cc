// Real encoded files, truncated at every length and with every single byte flipped, must all be
// refused with an error that names the damaged file.
#include <gtest/gtest.h>

#include "base/check.h"
#include "image/codec.h"
#include "image/inventory.h"
#include "image/test_util.h"
#include "image/tree_io.h"

namespace cryo::image {
namespace {

using testing::MakeRichTree;
using testing::MapSource;
using testing::RichPagesSizes;

MapSource RichSource() {
  auto files = EncodeTree(MakeRichTree());
  CRYO_CHECK(files.has_value());
  return MapSource(std::move(*files), RichPagesSizes());
}

// Decodes with `name` replaced by `bytes`; expects an error naming `name`.
void ExpectRejected(MapSource& source, const std::string& name, const std::string& bytes,
                    const std::string& what) {
  std::string original = std::exchange(source.files()[name], bytes);
  auto tree = DecodeTree(source);
  source.files()[name] = std::move(original);
  ASSERT_FALSE(tree) << name << ": " << what << " was accepted";
  EXPECT_NE(tree.error().Message().find(name), std::string::npos)
      << what << ": " << tree.error().Message();
}

TEST(FaultInjection, IntactFilesDecode) {
  MapSource source = RichSource();
  auto tree = DecodeTree(source);
  ASSERT_TRUE(tree) << tree.error().Message();
  EXPECT_EQ(*tree, MakeRichTree());
}

TEST(FaultInjection, EveryTruncationOfEveryFileIsAnError) {
  MapSource source = RichSource();
  EncodedFiles files = source.files();
  ASSERT_EQ(files.size(), 10u);  // nine per-process and tree files, shmem.img
  for (const auto& [name, bytes] : files) {
    for (size_t len = 0; len < bytes.size(); ++len) {
      ExpectRejected(source, name, bytes.substr(0, len), fmt::format("truncation to {}", len));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(FaultInjection, EverySingleByteFlipOfEveryFileIsAnError) {
  MapSource source = RichSource();
  EncodedFiles files = source.files();
  for (const auto& [name, bytes] : files) {
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (uint8_t mask : {0x01, 0x80, 0xff}) {
        std::string damaged = bytes;
        damaged[i] = static_cast<char>(damaged[i] ^ mask);
        ExpectRejected(source, name, damaged, fmt::format("byte {} ^ {:#x}", i, mask));
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(FaultInjection, EveryTruncationAndFlipOfTheInventoryIsAnError) {
  Inventory inv;
  inv.cryo_version = "0.1.0";
  inv.root_pid = 100;
  inv.kernel_release = "6.8.0-test";
  inv.created_ns = 1700000000000000000;
  inv.parent_dir = "../pre";
  std::string file = *EncodeInventory(inv);
  ASSERT_TRUE(DecodeInventory(file));
  for (size_t len = 0; len < file.size(); ++len) {
    ASSERT_FALSE(DecodeInventory(file.substr(0, len))) << len;
  }
  for (size_t i = 0; i < file.size(); ++i) {
    std::string damaged = file;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
    ASSERT_FALSE(DecodeInventory(damaged)) << i;
  }
}

TEST(FaultInjection, MissingFileIsNamed) {
  MapSource source = RichSource();
  source.files().erase("mm-102.img");
  auto tree = DecodeTree(source);
  ASSERT_FALSE(tree);
  EXPECT_NE(tree.error().Message().find("mm-102.img"), std::string::npos);
  EXPECT_EQ(tree.error().sys_errno(), ENOENT);
}

TEST(FaultInjection, SwappedPerProcessFilesAreRejected) {
  MapSource source = RichSource();
  std::swap(source.files()["core-100.img"], source.files()["core-102.img"]);
  auto tree = DecodeTree(source);
  ASSERT_FALSE(tree);
  EXPECT_NE(tree.error().Message().find("core-100.img: file is for pid 102"), std::string::npos)
      << tree.error().Message();
}

TEST(FaultInjection, FileOfAnotherKindIsRejected) {
  MapSource source = RichSource();
  source.files()["fds-100.img"] = source.files()["mm-100.img"];
  auto tree = DecodeTree(source);
  ASSERT_FALSE(tree);
  EXPECT_NE(tree.error().Message().find("fds-100.img: file kind is mm"), std::string::npos)
      << tree.error().Message();
}

// A compressed pages file: the pagemap with its block index decodes, and every truncation and
// flipped byte of that pagemap is refused like any other metadata; an index that points past the
// pages file (truncated pages file) or that does not cover the runs is refused naming the file.
// (Damage inside the compressed blocks themselves: pages_file_test.cc.)
model::ProcessTree CompressedTree() {
  model::ProcessTree t = MakeRichTree();
  model::Process& p = t.processes[0];  // its runs address 4 pages of content
  p.pages_compression = {.codec = model::PageCodec::kZstd,
                         .block_size = 64 << 10,
                         .raw_size = 4 * 4096,
                         .blocks = {{.offset = 0, .size = 2100}}};
  return t;
}

TEST(FaultInjection, CompressedPagemapDamageIsAnError) {
  auto files = EncodeTree(CompressedTree());
  ASSERT_TRUE(files);
  MapSource source(std::move(*files), RichPagesSizes());
  source.sizes()["pages-100.img"] = 2100;
  auto tree = DecodeTree(source);
  ASSERT_TRUE(tree) << tree.error().Message();
  EXPECT_EQ(*tree, CompressedTree());
  const std::string name = "pagemap-100.img";
  const std::string bytes = source.files()[name];
  for (size_t len = 0; len < bytes.size(); ++len) {
    ExpectRejected(source, name, bytes.substr(0, len), fmt::format("truncation to {}", len));
    if (HasFatalFailure()) return;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
    ExpectRejected(source, name, damaged, fmt::format("byte {} ^ 1", i));
    if (HasFatalFailure()) return;
  }
  source.sizes()["pages-100.img"] = 2099;
  auto truncated = DecodeTree(source);
  ASSERT_FALSE(truncated);
  EXPECT_NE(truncated.error().Message().find("pagemap-100.img: pages-100.img: block 0"),
            std::string::npos)
      << truncated.error().Message();
}

TEST(FaultInjection, CompressedContentMustCoverTheRuns) {
  model::ProcessTree t = CompressedTree();
  t.processes[0].pages_compression.raw_size = 3 * 4096;  // a run reads the 4th page
  EXPECT_FALSE(EncodeTree(t));                           // never written...
  auto files = EncodeTree(CompressedTree());
  ASSERT_TRUE(files);
  auto pagemap = EncodePagemap(t.processes[0]);
  ASSERT_TRUE(pagemap);
  (*files)["pagemap-100.img"] = *pagemap;  // ...and refused when read
  MapSource source(std::move(*files), RichPagesSizes());
  auto tree = DecodeTree(source);
  ASSERT_FALSE(tree);
  EXPECT_NE(tree.error().Message().find("pagemap-100.img: page run"), std::string::npos)
      << tree.error().Message();
}

}  // namespace
}  // namespace cryo::image
