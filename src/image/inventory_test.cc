#include "image/inventory.h"

#include <gtest/gtest.h>

#include "image/cryo.pb.h"
#include "image/image_file.h"
#include "image/test_util.h"

namespace cryo::image {
namespace {

using testing::TempDir;

Inventory Rich() {
  return Inventory{.format_version = kFormatVersion,
                   .cryo_version = "0.1.0-g1234",
                   .root_pid = 4242,
                   .kernel_release = "6.8.0-45-generic",
                   .page_size = kPageSize,
                   .arch = "x86_64",
                   .created_ns = 1700000000123456789,
                   .parent_dir = "../pre-dump-1"};
}

TEST(Inventory, RoundTripsThroughADirectory) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("img"));
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteInventory(*dir, Rich()));
  auto inv = ReadInventory(*dir);
  ASSERT_TRUE(inv) << inv.error().Message();
  EXPECT_EQ(*inv, Rich());

  Inventory no_parent = Rich();
  no_parent.parent_dir.reset();
  auto decoded = DecodeInventory(*EncodeInventory(no_parent));
  ASSERT_TRUE(decoded);
  EXPECT_FALSE(decoded->parent_dir.has_value());
}

TEST(Inventory, MissingFileNamesDirectoryAndFile) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("img"));
  ASSERT_TRUE(dir);
  auto inv = ReadInventory(*dir);
  ASSERT_FALSE(inv);
  EXPECT_NE(inv.error().Message().find("inventory.img"), std::string::npos);
  EXPECT_NE(inv.error().Message().find(tmp.Sub("img")), std::string::npos);
}

TEST(Inventory, RejectsWhatThisCryoCannotRestore) {
  auto check = [](Inventory inv, ErrorKind kind, const std::string& what) {
    auto r = DecodeInventory(*EncodeInventory(inv));
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().kind(), kind) << r.error().Message();
    EXPECT_NE(r.error().Message().find(what), std::string::npos) << r.error().Message();
  };
  Inventory inv = Rich();
  inv.page_size = 65536;
  check(inv, ErrorKind::kUnsupported, "page size 65536");
  inv = Rich();
  inv.arch = "aarch64";
  check(inv, ErrorKind::kUnsupported, "aarch64");
  inv = Rich();
  inv.root_pid = 0;
  check(inv, ErrorKind::kCorruptImage, "root pid 0");
  inv = Rich();
  inv.parent_dir = "/abs/path";
  check(inv, ErrorKind::kCorruptImage, "relative");
  inv = Rich();
  inv.format_version = 2;
  check(inv, ErrorKind::kCorruptImage, "format version 2 in the inventory");
}

TEST(Inventory, OverlongStringIsRefusedOnWrite) {
  Inventory inv = Rich();
  inv.kernel_release = std::string(5000, 'k');
  auto file = EncodeInventory(inv);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().kind(), ErrorKind::kUnsupported);
}

}  // namespace
}  // namespace cryo::image
