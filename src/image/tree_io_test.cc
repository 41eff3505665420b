#include "image/tree_io.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "image/format.h"
#include "image/test_util.h"

namespace cryo::image {
namespace {

using testing::MakeRichTree;
using testing::RichPagesSizes;
using testing::TempDir;
using testing::WriteSizedFile;

TEST(TreeIo, RoundTripsARichTreeThroughADirectory) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("img"));
  ASSERT_TRUE(dir) << dir.error().Message();
  for (const auto& [name, size] : RichPagesSizes()) WriteSizedFile(dir->path() + "/" + name, size);
  model::ProcessTree tree = MakeRichTree();
  auto written = WriteTree(*dir, tree);
  ASSERT_TRUE(written) << written.error().Message();

  auto reopened = ImageDir::Open(tmp.Sub("img"));
  ASSERT_TRUE(reopened);
  auto read = ReadTree(*reopened);
  ASSERT_TRUE(read) << read.error().Message();
  EXPECT_EQ(*read, tree);
  // Spot checks, in case operator== were ever to miss a field.
  EXPECT_EQ(read->processes[0].threads[1].regs.gs, tree.processes[0].threads[1].regs.gs);
  EXPECT_EQ(read->processes[1].vmas[4].name, "/tmp/\xff\xfe odd\nname");
  EXPECT_EQ(read->processes[0].fds[2].file.mtime_ns, 99);
  EXPECT_EQ(read->processes[0].fds[4].data, std::string("buffered\0bytes", 14));
  EXPECT_EQ(read->processes[0].fds[6].counter, 1ull << 40);
  EXPECT_EQ(read->processes[0].fds[8].interval_ns, 250'000'000u);
  EXPECT_EQ(read->processes[0].fds[9].epoll_targets.at(0).data, 0xdeadbeefcafeull);
  EXPECT_EQ(read->processes[0].fds[2].locks.at(0).end, 29u);
  EXPECT_EQ(read->processes[0].fds[10].messages.at(1), std::string("t\0o", 3));
  EXPECT_EQ(read->processes[0].fds[11].watches.at(1).path, "/var/odd\nname");
}

TEST(TreeIo, FilesAreCreatedWithMode0600) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("img"));
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteTree(*dir, MakeRichTree()));
  struct stat st;
  ASSERT_EQ(::stat((dir->path() + "/core-100.img").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(TreeIo, WritesEveryExpectedFile) {
  auto files = EncodeTree(MakeRichTree());
  ASSERT_TRUE(files) << files.error().Message();
  std::vector<std::string> names;
  for (const auto& [name, bytes] : *files) names.push_back(name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"core-100.img", "core-102.img", "fds-100.img", "fds-102.img",
                                      "mm-100.img", "mm-102.img", "pagemap-100.img",
                                      "pagemap-102.img", "pstree.img", "shmem.img"}));
}

TEST(TreeIo, RefusesToOverwriteAnExistingImage) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("img"));
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteTree(*dir, MakeRichTree()));
  auto again = WriteTree(*dir, MakeRichTree());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().sys_errno(), EEXIST);
}

TEST(TreeIo, RefusesToWriteATreeItCouldNotRead) {
  model::ProcessTree tree = MakeRichTree();
  tree.processes[1].vmas[1].start = 0x400000;  // overlaps vma 0
  auto files = EncodeTree(tree);
  ASSERT_FALSE(files);
  EXPECT_EQ(files.error().kind(), ErrorKind::kInternal);
  EXPECT_NE(files.error().Message().find("mm-102.img"), std::string::npos)
      << files.error().Message();

  tree = MakeRichTree();
  tree.root_pid = 102;
  EXPECT_FALSE(EncodeTree(tree));

  tree = MakeRichTree();
  tree.processes[0].threads.resize(70000);    // over the 65536 limit of the format
  tree.processes[0].control.seccomp.clear();  // one entry per thread: not the point here
  for (size_t i = 2; i < tree.processes[0].threads.size(); ++i) {
    tree.processes[0].threads[i].tid = static_cast<pid_t>(1000 + i);
  }
  files = EncodeTree(tree);
  ASSERT_FALSE(files);
  EXPECT_NE(files.error().Message().find("more than 65536"), std::string::npos)
      << files.error().Message();
}

TEST(TreeIo, ReadRejectsPagesFileThatIsTooSmallOrMissing) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("img"));
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteTree(*dir, MakeRichTree()));
  auto missing = ReadTree(*dir);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().Message().find("pages-100.img"), std::string::npos)
      << missing.error().Message();
  WriteSizedFile(dir->path() + "/pages-100.img", 3 * 4096);  // one page short
  WriteSizedFile(dir->path() + "/pages-102.img", 5 * 4096);
  auto small = ReadTree(*dir);
  ASSERT_FALSE(small);
  EXPECT_NE(small.error().Message().find("pagemap-100.img: page run 5"), std::string::npos)
      << small.error().Message();
}

}  // namespace
}  // namespace cryo::image
