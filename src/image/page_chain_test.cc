#include "image/page_chain.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/io.h"
#include "image/codec.h"
#include "image/format.h"
#include "image/test_util.h"

namespace cryo::image {
namespace {

using testing::TempDir;
using testing::WriteSizedFile;

constexpr pid_t kPid = 42;
constexpr uint64_t kBase = 0x7f0000000000;

// Writes an image holding only what the chain reads: inventory, pagemap, pages file.
void WriteLink(const std::string& path, std::optional<std::string> parent,
               std::vector<model::PageRun> runs, uint64_t pages_size, pid_t pid = kPid) {
  ::mkdir(path.c_str(), 0700);
  auto dir = ImageDir::Open(path);
  ASSERT_TRUE(dir);
  Inventory inv;
  inv.root_pid = pid;
  inv.parent_dir = parent;
  ASSERT_TRUE(WriteInventory(*dir, inv));
  model::Process p;
  p.pid = pid;
  p.pages_file = PagesFileName(pid);
  p.pagemap = std::move(runs);
  auto pm = EncodePagemap(p);
  ASSERT_TRUE(pm);
  ASSERT_TRUE(WriteImageFile(*dir, PagemapFileName(pid), *pm));
  WriteSizedFile(path + "/" + p.pages_file, pages_size);
}

Result<PageChain> OpenChain(const std::string& path) {
  auto dir = CRYO_TRY(ImageDir::Open(path));
  auto inv = CRYO_TRY(ReadInventory(dir));
  return PageChain::Open(dir, inv, kPid);
}

TEST(PageChain, ResolvesPagesThroughTwoParents) {
  TempDir t;
  WriteLink(t.Sub("a"), std::nullopt, {{kBase, 4, 0, model::kPagePresent}}, 4 * 4096);
  WriteLink(t.Sub("b"), "../a",
            {{kBase, 1, 0, model::kPagePresent}, {kBase + 4096, 3, 0, model::kPageInParent}}, 4096);
  WriteLink(t.Sub("c"), "../b", {{kBase, 4, 0, model::kPageInParent}}, 0);
  auto chain = OpenChain(t.Sub("c"));
  ASSERT_TRUE(chain) << chain.error().Message();
  EXPECT_EQ(chain->depth(), 2u);
  std::vector<PageSegment> segs;
  ASSERT_TRUE(chain->Resolve(kBase, 4 * 4096, segs));
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].level, 0u);  // page 0 from b
  EXPECT_EQ(segs[0].len, 4096u);
  EXPECT_EQ(segs[1].level, 1u);  // pages 1-3 from a, at their offset there
  EXPECT_EQ(segs[1].offset, 4096u);
  EXPECT_EQ(segs[1].len, 3 * 4096u);
}

TEST(PageChain, PageMissingFromTheChainIsCorrupt) {
  TempDir t;
  WriteLink(t.Sub("a"), std::nullopt, {{kBase, 1, 0, model::kPagePresent}}, 4096);
  WriteLink(t.Sub("b"), "../a", {}, 0);
  auto chain = OpenChain(t.Sub("b"));
  ASSERT_TRUE(chain);
  std::vector<PageSegment> segs;
  auto r = chain->Resolve(kBase, 2 * 4096, segs);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::kCorruptImage);
}

TEST(PageChain, PagesInheritedFromTheTreeParentAreNotInTheChain) {
  // A dump of a forked tree is a valid parent image, but its inherited pages are not its own: a
  // later dump stores them (they are not its coverage), so a run leading there is corrupt.
  TempDir t;
  WriteLink(t.Sub("a"), std::nullopt,
            {{kBase, 1, 0, model::kPagePresent}, {kBase + 4096, 1, 0, model::kPageInherited}},
            4096);
  WriteLink(t.Sub("b"), "../a", {{kBase, 2, 0, model::kPageInParent}}, 0);
  auto chain = OpenChain(t.Sub("b"));
  ASSERT_TRUE(chain) << chain.error().Message();
  std::vector<PageSegment> segs;
  ASSERT_TRUE(chain->Resolve(kBase, 4096, segs));
  auto r = chain->Resolve(kBase + 4096, 4096, segs);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().Message().find("inherited from the tree parent"), std::string::npos)
      << r.error().Message();
}

TEST(PageChain, RefusesCycles) {
  TempDir t;
  WriteLink(t.Sub("a"), "../b", {}, 0);
  WriteLink(t.Sub("b"), "../a", {}, 0);
  auto chain = OpenChain(t.Sub("a"));
  ASSERT_FALSE(chain);
  EXPECT_NE(chain.error().Message().find("loops"), std::string::npos) << chain.error().Message();
}

TEST(PageChain, RefusesAnotherPidsImage) {
  TempDir t;
  WriteLink(t.Sub("a"), std::nullopt, {}, 0, kPid + 1);
  WriteLink(t.Sub("b"), "../a", {}, 0);
  auto chain = OpenChain(t.Sub("b"));
  ASSERT_FALSE(chain);
  EXPECT_NE(chain.error().Message().find("not 42"), std::string::npos) << chain.error().Message();
}

TEST(PageChain, IsPerProcessAndEndsAtAParentWithoutThePidsPagemap) {
  TempDir t;
  constexpr pid_t kChild = kPid + 7;
  WriteLink(t.Sub("a"), std::nullopt, {{kBase, 1, 0, model::kPagePresent}}, 4096);  // root only
  WriteLink(t.Sub("b"), "../a", {{kBase, 1, 0, model::kPageInParent}}, 0);
  // The child's pagemap in b, whose inventory names the root: its chain is b alone.
  {
    auto dir = ImageDir::Open(t.Sub("b"));
    ASSERT_TRUE(dir);
    model::Process c;
    c.pid = kChild;
    c.pages_file = PagesFileName(kChild);
    c.pagemap = {{kBase, 2, 0, model::kPagePresent}};
    auto pm = EncodePagemap(c);
    ASSERT_TRUE(pm);
    ASSERT_TRUE(WriteImageFile(*dir, PagemapFileName(kChild), *pm));
    WriteSizedFile(t.Sub("b") + "/" + c.pages_file, 2 * 4096);
  }
  WriteLink(t.Sub("c"), "../b", {{kBase, 1, 0, model::kPageInParent}}, 0);
  auto dir = ImageDir::Open(t.Sub("c"));
  ASSERT_TRUE(dir);
  auto inv = ReadInventory(*dir);
  ASSERT_TRUE(inv);
  auto root = PageChain::Open(*dir, *inv, kPid);
  ASSERT_TRUE(root) << root.error().Message();
  EXPECT_EQ(root->depth(), 2u);
  auto child = PageChain::Open(*dir, *inv, kChild);
  ASSERT_TRUE(child) << child.error().Message();
  EXPECT_EQ(child->depth(), 1u);
  std::vector<PageSegment> segs;
  ASSERT_TRUE(child->Resolve(kBase, 2 * 4096, segs));
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].level, 0u);
  EXPECT_FALSE(child->Resolve(kBase, 2 * 4096, segs, 1));  // nothing beyond b for the child
}

TEST(PageChain, RefusesMissingParentAndStoredRunsOutsideTheFile) {
  TempDir t;
  WriteLink(t.Sub("b"), "../nowhere", {}, 0);
  EXPECT_FALSE(OpenChain(t.Sub("b")));
  WriteLink(t.Sub("a"), std::nullopt, {{kBase, 2, 0, model::kPagePresent}}, 4096);
  WriteLink(t.Sub("c"), "../a", {}, 0);
  auto chain = OpenChain(t.Sub("c"));
  ASSERT_FALSE(chain);
  EXPECT_EQ(chain.error().kind(), ErrorKind::kCorruptImage);
}

}  // namespace
}  // namespace cryo::image
