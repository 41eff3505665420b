// Real encoded files, truncated at every length and with every single byte flipped, must all be
// refused with an error that names the damaged file.
#include <gtest/gtest.h>

#include "base/check.h"
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

}  // namespace
}  // namespace cryo::image
