#include "image/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace cryo::image {
namespace {

// Check values from RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32c, MatchesRfc3720Vectors) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending), 0x46dd794eu);
}

TEST(Crc32c, SlicedPathAgreesWithBytewiseForAllLengthsAndAlignments) {
  std::string data;
  for (int i = 0; i < 64; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  // Reference: the plain bit-at-a-time definition.
  auto reference = [](std::string_view s) {
    uint32_t crc = 0xffffffff;
    for (unsigned char c : s) {
      crc ^= c;
      for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78 : crc >> 1;
    }
    return crc ^ 0xffffffff;
  };
  for (size_t start = 0; start < 8; ++start) {
    for (size_t len = 0; start + len <= data.size(); ++len) {
      std::string_view s = std::string_view(data).substr(start, len);
      ASSERT_EQ(Crc32c(s), reference(s)) << start << "+" << len;
    }
  }
}

}  // namespace
}  // namespace cryo::image
