#include "image/header.h"

#include <gtest/gtest.h>

#include "image/cryo.pb.h"
#include "image/image_file.h"

namespace cryo::image {
namespace {

std::string SetU16(std::string file, size_t offset, uint16_t v) {
  file[offset] = static_cast<char>(v & 0xff);
  file[offset + 1] = static_cast<char>(v >> 8);
  return file;
}

TEST(Header, LayoutIsLittleEndianAsSpecified) {
  std::string file = FrameFile(Kind::kMm, "abc");
  ASSERT_EQ(file.size(), kHeaderSize + 3);
  EXPECT_EQ(file.substr(0, 4), "CRYO");
  EXPECT_EQ(file.substr(4, 2), std::string("\x01\x00", 2));          // version 1
  EXPECT_EQ(file.substr(6, 2), std::string("\x04\x00", 2));          // kind mm
  EXPECT_EQ(file.substr(8, 4), std::string("\x03\x00\x00\x00", 4));  // length
  // CRC-32C("abc") = 0x364b3fb7, stored little-endian.
  EXPECT_EQ(file.substr(12, 4), std::string("\xb7\x3f\x4b\x36", 4));
  EXPECT_EQ(file.substr(16, 8), std::string(8, '\0'));
  EXPECT_EQ(file.substr(24), "abc");
}

TEST(Header, CheckFrameAcceptsWhatFrameFileWrites) {
  auto h = CheckFrame(FrameFile(Kind::kPagemap, "payload"));
  ASSERT_TRUE(h) << h.error().Message();
  EXPECT_EQ(h->version, kFormatVersion);
  EXPECT_EQ(h->kind, Kind::kPagemap);
  EXPECT_EQ(h->payload_size, 7u);
}

TEST(Header, NewerVersionIsUnsupportedAndNamesBothVersions) {
  auto h = CheckFrame(SetU16(FrameFile(Kind::kCore, "x"), 4, 2));
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().kind(), ErrorKind::kUnsupported);
  EXPECT_NE(h.error().Message().find("version 2"), std::string::npos) << h.error().Message();
  EXPECT_NE(h.error().Message().find("version 1"), std::string::npos) << h.error().Message();
}

TEST(Header, UnknownOlderVersionIsCorruptAndNamesBothVersions) {
  auto h = CheckFrame(SetU16(FrameFile(Kind::kCore, "x"), 4, 0));
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().kind(), ErrorKind::kCorruptImage);
  EXPECT_NE(h.error().Message().find("version 0"), std::string::npos) << h.error().Message();
  EXPECT_NE(h.error().Message().find("version 1"), std::string::npos) << h.error().Message();
}

TEST(Header, VersionErrorThroughReadNamesTheFile) {
  pb::Fds fds;
  fds.set_pid(5);
  std::string file = SetU16(*EncodeFile(Kind::kFds, fds), 4, 3);
  pb::Fds out;
  auto ok = DecodeFile(file, Kind::kFds, out);
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().Message().find("version 3"), std::string::npos);
}

TEST(Header, RejectsUnknownKindWrongKindBadMagicAndReserved) {
  EXPECT_FALSE(CheckFrame(SetU16(FrameFile(Kind::kCore, "x"), 6, 0)));
  EXPECT_FALSE(CheckFrame(SetU16(FrameFile(Kind::kCore, "x"), 6, kMaxKind + 1)));
  std::string bad_magic = FrameFile(Kind::kCore, "x");
  bad_magic[0] = 'X';
  EXPECT_FALSE(CheckFrame(bad_magic));
  std::string reserved = FrameFile(Kind::kCore, "x");
  reserved[20] = 1;
  EXPECT_FALSE(CheckFrame(reserved));

  pb::Mm mm;
  auto wrong_kind = DecodeFile(*EncodeFile(Kind::kMm, mm), Kind::kCore, mm);
  ASSERT_FALSE(wrong_kind);
  EXPECT_NE(wrong_kind.error().Message().find("expected core"), std::string::npos)
      << wrong_kind.error().Message();
}

TEST(Header, RejectsTrailingBytesAndHugeLength) {
  EXPECT_FALSE(CheckFrame(FrameFile(Kind::kCore, "x") + "y"));
  std::string huge = FrameFile(Kind::kCore, "");
  huge[11] = 0x7f;  // length 0x7f000000 > limit
  auto h = CheckFrame(huge);
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().Message().find("exceeds"), std::string::npos) << h.error().Message();
}

}  // namespace
}  // namespace cryo::image
