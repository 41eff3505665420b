// shmem.img: the codec round trip, and hostile tables and references refused by DecodeTree with
// an error naming the file and the fault (each file re-encoded from a model that breaks one rule,
// bypassing the checks EncodeTree makes).
#include <gtest/gtest.h>

#include <functional>

#include "base/check.h"
#include "image/codec.h"
#include "image/cryo.pb.h"
#include "image/image_file.h"
#include "image/shmem_io.h"
#include "image/test_util.h"
#include "image/tree_io.h"

namespace cryo::image {
namespace {

using testing::MakeRichTree;
using testing::MapSource;
using testing::RichPagesSizes;

TEST(ShmemCodec, RoundTripsEveryField) {
  model::ProcessTree tree = MakeRichTree();
  auto bytes = EncodeShmem(tree.shmem);
  ASSERT_TRUE(bytes) << bytes.error().Message();
  auto back = DecodeShmem(*bytes);
  ASSERT_TRUE(back) << back.error().Message();
  EXPECT_EQ(*back, tree.shmem);
}

TEST(ShmemCodec, UnknownKindIsCorrupt) {
  pb::Shmem m;
  m.add_objects()->set_kind(static_cast<pb::ShmemKind>(9));
  auto back = DecodeShmem(FrameFile(Kind::kShmem, m.SerializeAsString()));
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().kind(), ErrorKind::kCorruptImage);
  EXPECT_NE(back.error().Message().find("unknown kind 9"), std::string::npos);
}

TEST(ShmemCodec, ObjectCountAtTheLimitPassesAndOneMoreFails) {
  // An empty ShmemObject (field 2 of Shmem, length 0) is two bytes on the wire.
  std::string one("\x12\x00", 2);
  std::string at_limit;
  for (int i = 0; i < 65536; i++) at_limit += one;
  EXPECT_TRUE(DecodeShmem(FrameFile(Kind::kShmem, at_limit)));
  auto over = DecodeShmem(FrameFile(Kind::kShmem, at_limit + one));
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().Message().find("Shmem.objects"), std::string::npos)
      << over.error().Message();
}

class HostileShmem : public ::testing::Test {
 protected:
  HostileShmem() : tree_(MakeRichTree()), source_(Encode(tree_), RichPagesSizes()) {}

  static EncodedFiles Encode(const model::ProcessTree& tree) {
    auto files = EncodeTree(tree);
    CRYO_CHECK(files.has_value());
    return std::move(*files);
  }
  void ReplaceTable(const std::function<void(model::ShmemTable&)>& mutate) {
    model::ShmemTable t = tree_.shmem;
    mutate(t);
    source_.files()[std::string(kShmemFile)] = *EncodeShmem(t);
  }
  void ReplaceMm(const std::function<void(model::Process&)>& mutate) {
    model::Process p = tree_.processes[0];
    mutate(p);
    source_.files()[MmFileName(p.pid)] = *EncodeMm(p);
  }
  void ReplaceFds(const std::function<void(model::Process&)>& mutate) {
    model::Process p = tree_.processes[0];
    mutate(p);
    source_.files()[FdsFileName(p.pid)] = *EncodeFds(p);
  }
  void ExpectRejected(const std::string& what, const std::string& file = "shmem.img") {
    auto tree = DecodeTree(source_);
    ASSERT_FALSE(tree) << "accepted; expected: " << what;
    EXPECT_EQ(tree.error().kind(), ErrorKind::kCorruptImage) << tree.error().Message();
    EXPECT_NE(tree.error().Message().find(file), std::string::npos) << tree.error().Message();
    EXPECT_NE(tree.error().Message().find(what), std::string::npos) << tree.error().Message();
  }

  model::ProcessTree tree_;
  MapSource source_;
};

TEST_F(HostileShmem, IntactTreeDecodesWithItsObjects) {
  auto tree = DecodeTree(source_);
  ASSERT_TRUE(tree) << tree.error().Message();
  EXPECT_EQ(*tree, tree_);
}

TEST_F(HostileShmem, MissingShmemFileWhenReferenced) {
  source_.files().erase(std::string(kShmemFile));
  auto tree = DecodeTree(source_);
  ASSERT_FALSE(tree);
  EXPECT_NE(tree.error().Message().find("shmem.img"), std::string::npos);
}

TEST_F(HostileShmem, PagesFileTooSmallOrMissing) {
  source_.sizes()["pages-shmem.img"] = 3 * 4096;  // run {0x2000, 2} of object 1 ends at 4 pages
  ExpectRejected("not inside the pages file");
  source_.sizes().erase("pages-shmem.img");
  EXPECT_FALSE(DecodeTree(source_));
}

TEST_F(HostileShmem, PagesFileNameWithSlash) {
  ReplaceTable([](auto& t) { t.pages_file = "../pages-shmem.img"; });
  ExpectRejected("not a plain file name");
}

TEST_F(HostileShmem, ObjectFields) {
  struct Case {
    std::function<void(model::ShmemTable&)> mutate;
    std::string what;
  };
  std::vector<Case> cases = {
      {[](auto& t) { t.objects[0].id = 0; }, "id 0"},
      {[](auto& t) { t.objects[2].id = 1; }, "id 1 appears twice"},
      {[](auto& t) { t.objects[0].size = kMaxShmemSize + 1; }, "exceeds"},
      {[](auto& t) { t.objects[0].size = 0; }, "empty shared anonymous"},
      {[](auto& t) { t.objects[2].size = 0; }, "empty System V"},
      {[](auto& t) { t.objects[1].mode = 01777; }, "mode"},
      {[](auto& t) { t.objects[2].flags = 0x80; }, "unknown flags"},
      {[](auto& t) { t.objects[0].sysv_id = 5; }, "System V fields"},
      {[](auto& t) { t.objects[2].sysv_id = -1; }, "System V id -1"},
      {[](auto& t) { t.objects[0].seals = 1; }, "seals on an object that is no memfd"},
      {[](auto& t) { t.objects[1].seals = 0x40; }, "unknown seals"},
      {[](auto& t) { t.objects[1].name = std::string(250, 'n'); }, "memfd name of 250 bytes"},
      {[](auto& t) { t.objects[1].name = std::string("a\0b", 3); }, "NUL"},
      {[](auto& t) {
         t.objects[1].kind = model::ShmemKind::kTmpfs;
         t.objects[1].seals = 0;
         t.objects[1].name = "relative/path";
       },
       "not absolute"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    source_ = MapSource(Encode(tree_), RichPagesSizes());
    ReplaceTable(c.mutate);
    ExpectRejected(c.what);
  }
}

TEST_F(HostileShmem, Runs) {
  struct Case {
    std::function<void(model::ShmemTable&)> mutate;
    std::string what;
  };
  // Object 1: 0x4000 bytes; object 2 (memfd): 10000 bytes, so 3 pages after rounding.
  std::vector<Case> cases = {
      {[](auto& t) { t.objects[0].runs[0].offset = 0x800; }, "is not inside its"},
      {[](auto& t) { t.objects[0].runs[0].nr_pages = 0; }, "is not inside its"},
      {[](auto& t) { t.objects[0].runs[1].nr_pages = 3; }, "is not inside its 16384 bytes"},
      {[](auto& t) { t.objects[1].runs[0].offset = 0x3000; }, "is not inside its 10000 bytes"},
      {[](auto& t) { t.objects[0].runs[1].nr_pages = ~uint64_t{0} / 2; }, "is not inside its"},
      {[](auto& t) { t.objects[0].runs[0].offset = 0x2000; }, "overlaps or precedes"},
      {[](auto& t) { std::swap(t.objects[0].runs[0], t.objects[0].runs[1]); },
       "overlaps or precedes"},
      {[](auto& t) { t.objects[0].runs[0].file_offset = 0x1001; }, "not inside the pages file"},
      {[](auto& t) { t.objects[0].runs[0].file_offset = ~uint64_t{0} & ~0xfffull; },
       "not inside the pages file"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    source_ = MapSource(Encode(tree_), RichPagesSizes());
    ReplaceTable(c.mutate);
    ExpectRejected(c.what);
  }
}

TEST_F(HostileShmem, VmaReferences) {
  struct Case {
    std::function<void(model::Process&)> mutate;
    std::string what;
  };
  // vmas[3]: anon shared (object 1), vmas[5]: System V (object 3), vmas[6]: memfd private (2).
  std::vector<Case> cases = {
      {[](auto& p) { p.vmas[3].shmem_id = 0; }, "names no shared object"},
      {[](auto& p) { p.vmas[5].shmem_id = 0; }, "names no shared object"},
      {[](auto& p) { p.vmas[3].shmem_id = 99; }, "which shmem.img does not hold"},
      {[](auto& p) { p.vmas[3].shmem_id = 2; }, "maps memfd object 2"},
      {[](auto& p) { p.vmas[6].shmem_id = 3; }, "maps System V object 3"},
      {[](auto& p) { p.vmas[2].shmem_id = 1; }, "names shared object 1"},  // [heap]
      {[](auto& p) { p.vmas[5].pgoff = 0x2000; }, "reaches past the 12288 bytes"},
      {[](auto& p) { p.vmas[6].pgoff = kMaxShmemSize; }, "out of range"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    source_ = MapSource(Encode(tree_), RichPagesSizes());
    ReplaceMm(c.mutate);
    ExpectRejected(c.what);
  }
}

TEST_F(HostileShmem, FdReferences) {
  struct Case {
    std::function<void(model::Process&)> mutate;
    std::string what;
  };
  // fds[12]: fd 16, FD_SHMEM of the memfd (object 2).
  std::vector<Case> cases = {
      {[](auto& p) { p.fds[12].shmem_id = 42; }, "which shmem.img does not hold"},
      {[](auto& p) { p.fds[12].shmem_id = 3; }, "only memfd and tmpfs objects have fds"},
      {[](auto& p) { p.fds[12].shmem_id = 1; }, "only memfd and tmpfs objects have fds"},
      {[](auto& p) { p.fds[2].shmem_id = 2; }, "but is no FD_SHMEM"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    source_ = MapSource(Encode(tree_), RichPagesSizes());
    ReplaceFds(c.mutate);
    ExpectRejected(c.what);
  }
}

TEST(ShmemWrite, RefusesATableItCouldNotRead) {
  model::ProcessTree tree = MakeRichTree();
  tree.shmem.objects[0].runs[0].offset = 0x10000;  // past the object's 16 KiB
  auto files = EncodeTree(tree);
  ASSERT_FALSE(files);
  EXPECT_EQ(files.error().kind(), ErrorKind::kInternal);
  EXPECT_NE(files.error().Message().find("shmem.img"), std::string::npos);
}

TEST(ShmemWrite, NoFileWithoutObjects) {
  model::ProcessTree tree = MakeRichTree();
  for (auto& p : tree.processes) {
    p.vmas.erase(p.vmas.begin() + 5, p.vmas.begin() + 7);
    p.vmas.erase(p.vmas.begin() + 3);
    p.fds.erase(p.fds.begin() + 12);
  }
  tree.shmem = {};
  auto files = EncodeTree(tree);
  ASSERT_TRUE(files) << files.error().Message();
  EXPECT_FALSE(files->contains(std::string(kShmemFile)));
}

}  // namespace
}  // namespace cryo::image
