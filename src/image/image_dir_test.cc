#include "image/image_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/test_util.h"

namespace cryo::image {
namespace {

using testing::TempDir;
using testing::WriteSizedFile;

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(ImageDir, CreateMakesTheDirectoryAndParentsWithMode0700) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("a/b/c"));
  ASSERT_TRUE(dir) << dir.error().Message();
  EXPECT_EQ(dir->path(), tmp.Sub("a/b/c"));
  EXPECT_EQ(ModeOf(tmp.Sub("a/b/c")), 0700u);
  EXPECT_EQ(ModeOf(tmp.Sub("a")) & 0077, 0u);
  EXPECT_GE(dir->fd(), 0);
}

TEST(ImageDir, CreateTightensAnExistingEmptyDirectoryTo0700) {
  TempDir tmp;
  ASSERT_EQ(::mkdir(tmp.Sub("d").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(tmp.Sub("d").c_str(), 0755), 0);
  ASSERT_TRUE(ImageDir::Create(tmp.Sub("d")));
  EXPECT_EQ(ModeOf(tmp.Sub("d")), 0700u);
}

TEST(ImageDir, CreateAcceptsLogsAndStatsButNotImagesOrForeignFiles) {
  TempDir tmp;
  ASSERT_EQ(::mkdir(tmp.Sub("d").c_str(), 0700), 0);
  WriteSizedFile(tmp.Sub("d/dump.log"), 10);
  WriteSizedFile(tmp.Sub("d/stats-dump.json"), 10);
  EXPECT_TRUE(ImageDir::Create(tmp.Sub("d")));

  WriteSizedFile(tmp.Sub("d/inventory.img"), 10);
  auto with_image = ImageDir::Create(tmp.Sub("d"));
  ASSERT_FALSE(with_image);
  EXPECT_EQ(with_image.error().kind(), ErrorKind::kInvalidArg);
  EXPECT_NE(with_image.error().Message().find("inventory.img"), std::string::npos);

  ASSERT_EQ(::unlink(tmp.Sub("d/inventory.img").c_str()), 0);
  WriteSizedFile(tmp.Sub("d/notes.txt"), 10);
  auto foreign = ImageDir::Create(tmp.Sub("d"));
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().Message().find("notes.txt"), std::string::npos);
}

TEST(ImageDir, CreateOverAFileFails) {
  TempDir tmp;
  WriteSizedFile(tmp.Sub("f"), 1);
  EXPECT_FALSE(ImageDir::Create(tmp.Sub("f")));
  EXPECT_FALSE(ImageDir::Create(tmp.Sub("f/sub")));
}

TEST(ImageDir, OpenOfAMissingDirectoryIsENOENT) {
  TempDir tmp;
  auto dir = ImageDir::Open(tmp.Sub("nope"));
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().sys_errno(), ENOENT);
  EXPECT_NE(dir.error().Message().find(tmp.Sub("nope")), std::string::npos);
}

TEST(ImageDir, WriteIsExclusiveWithMode0600AndReadReturnsTheBytes) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("d"));
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteImageFile(*dir, "x.img", std::string("a\0b", 3)));
  EXPECT_EQ(ModeOf(tmp.Sub("d/x.img")), 0600u);
  auto again = WriteImageFile(*dir, "x.img", "c");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().sys_errno(), EEXIST);
  auto read = ReadImageFile(*dir, "x.img", 100);
  ASSERT_TRUE(read);
  EXPECT_EQ(*read, std::string("a\0b", 3));
  EXPECT_FALSE(ReadImageFile(*dir, "x.img", 2));  // over the size limit
  EXPECT_EQ(*ImageFileSize(*dir, "x.img"), 3u);
  EXPECT_FALSE(WriteImageFile(*dir, "../escape.img", "c"));
  EXPECT_FALSE(ReadImageFile(*dir, "/etc/passwd", 100000));
}

TEST(ImageDir, ReadRefusesSymlinksFifosAndDirectories) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("d"));
  ASSERT_TRUE(dir);
  WriteSizedFile(tmp.Sub("target"), 5);
  ASSERT_EQ(::symlink(tmp.Sub("target").c_str(), tmp.Sub("d/link.img").c_str()), 0);
  ASSERT_EQ(::mkfifo(tmp.Sub("d/fifo.img").c_str(), 0600), 0);
  ASSERT_EQ(::mkdir(tmp.Sub("d/sub.img").c_str(), 0700), 0);
  for (const char* name : {"link.img", "fifo.img", "sub.img"}) {
    auto r = ReadImageFile(*dir, name, 100);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().kind(), ErrorKind::kCorruptImage) << r.error().Message();
    EXPECT_FALSE(ImageFileSize(*dir, name)) << name;
  }
}

TEST(ImageDir, ListIsSorted) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("d"));
  ASSERT_TRUE(dir);
  WriteSizedFile(tmp.Sub("d/b.img"), 1);
  WriteSizedFile(tmp.Sub("d/a.img"), 1);
  auto names = ListImageDir(*dir);
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"a.img", "b.img"}));
}

TEST(ImageDir, IsMovable) {
  TempDir tmp;
  auto dir = ImageDir::Create(tmp.Sub("d"));
  ASSERT_TRUE(dir);
  int fd = dir->fd();
  ImageDir moved = std::move(*dir);
  EXPECT_EQ(moved.fd(), fd);
  static_assert(!std::is_copy_constructible_v<ImageDir>);
}

}  // namespace
}  // namespace cryo::image
