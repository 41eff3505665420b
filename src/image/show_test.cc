#include "image/show.h"

#include <gtest/gtest.h>

#include "image/inventory.h"
#include "image/test_util.h"
#include "image/tree_io.h"

namespace cryo::image {
namespace {

using testing::MakeRichTree;
using testing::RichPagesSizes;
using testing::TempDir;
using testing::WriteSizedFile;

class Show : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ImageDir::Create(tmp_.Sub("img"));
    ASSERT_TRUE(dir);
    Inventory inv;
    inv.cryo_version = "0.1";
    inv.root_pid = 100;
    ASSERT_TRUE(WriteInventory(*dir, inv));
    ASSERT_TRUE(WriteTree(*dir, MakeRichTree()));
    for (const auto& [name, size] : RichPagesSizes()) WriteSizedFile(tmp_.Sub("img/") + name, size);
    WriteSizedFile(tmp_.Sub("img/stats-dump.json"), 3);
    dir_.emplace(std::move(*dir));
  }
  TempDir tmp_;
  std::optional<ImageDir> dir_;
};

TEST_F(Show, DirListsEveryImageFileAndNothingElse) {
  auto json = ShowDir(*dir_);
  ASSERT_TRUE(json) << json.error().Message();
  std::vector<std::string> keys;
  for (const auto& [key, value] : json->items()) keys.push_back(key);
  EXPECT_EQ(keys,
            (std::vector<std::string>{
                "core-100.img", "core-102.img", "fds-100.img", "fds-102.img", "inventory.img",
                "mm-100.img", "mm-102.img", "pagemap-100.img", "pagemap-102.img", "pages-100.img",
                "pages-102.img", "pages-shmem.img", "pstree.img", "shmem.img"}));
  // Serialisable as strict UTF-8 JSON despite the non-UTF-8 vma name.
  EXPECT_FALSE(json->dump(2).empty());
}

TEST_F(Show, MetadataFileHasHeaderFieldsAndTheEntry) {
  auto json = ShowFile(*dir_, "core-100.img");
  ASSERT_TRUE(json) << json.error().Message();
  EXPECT_EQ((*json)["magic"], "CRYO");
  EXPECT_EQ((*json)["version"], 1);
  EXPECT_EQ((*json)["kind"], "core");
  EXPECT_GT((*json)["payload_size"].get<uint64_t>(), 0u);
  const auto& entry = (*json)["entry"];
  EXPECT_EQ(entry["pid"], 100);
  EXPECT_EQ(entry["comm"], "victim-1");
  EXPECT_EQ(entry["umask"], 027);
  EXPECT_EQ(entry["sigactions"].size(), 64u);
  EXPECT_EQ(entry["rlimits"][0]["max"].get<uint64_t>(), ~uint64_t{0});
  ASSERT_EQ(entry["threads"].size(), 2u);
  EXPECT_EQ(entry["threads"][1]["tid"], 101);
  EXPECT_EQ(entry["threads"][0]["regs"]["rip"], (1u << 8) + 17);
  std::string xstate = entry["threads"][0]["xstate"];
  EXPECT_EQ(xstate.size(), 2 * 1088u);
  EXPECT_EQ(xstate.substr(0, 6), "010203");  // hex
  EXPECT_EQ(entry["threads"][0]["pending"][0].get<std::string>().size(), 256u);
}

TEST_F(Show, EnumsByNameTextEscapedAndOptionalOnlyWhenSet) {
  auto mm = ShowFile(*dir_, "mm-102.img");
  ASSERT_TRUE(mm) << mm.error().Message();
  const auto& vmas = (*mm)["entry"]["vmas"];
  EXPECT_EQ(vmas[0]["kind"], "VMA_FILE_PRIVATE");
  EXPECT_EQ(vmas[4]["name"], "/tmp/\\xff\\xfe odd\nname");
  EXPECT_EQ(vmas[4]["file"]["mtime_ns"], -5);
  EXPECT_EQ((*mm)["entry"]["auxv"].size(), 8u);

  auto inv = ShowFile(*dir_, "inventory.img");
  ASSERT_TRUE(inv);
  EXPECT_EQ((*inv)["kind"], "inventory");
  EXPECT_FALSE((*inv)["entry"].contains("parent_dir"));
  EXPECT_EQ((*inv)["entry"]["arch"], "x86_64");

  auto pagemap = ShowFile(*dir_, "pagemap-100.img");
  ASSERT_TRUE(pagemap);
  EXPECT_EQ((*pagemap)["entry"]["pages_file"], "pages-100.img");
  EXPECT_EQ((*pagemap)["entry"]["runs"][3]["flags"], 9);
}

TEST_F(Show, PagesFileIsASummary) {
  auto json = ShowFile(*dir_, "pages-102.img");
  ASSERT_TRUE(json) << json.error().Message();
  EXPECT_EQ(*json, (nlohmann::json{{"kind", "pages"}, {"size", 5 * 4096}, {"pages", 5}}));
}

TEST_F(Show, CorruptOrMissingFileIsAnErrorNamingIt) {
  WriteSizedFile(tmp_.Sub("img/core-999.img"), 30);  // zeros: bad magic
  auto bad = ShowFile(*dir_, "core-999.img");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().Message().find("core-999.img: not a cryo image"), std::string::npos)
      << bad.error().Message();
  auto dir = ShowDir(*dir_);
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().Message().find("core-999.img"), std::string::npos);
  auto missing = ShowFile(*dir_, "nope.img");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sys_errno(), ENOENT);
}

}  // namespace
}  // namespace cryo::image
