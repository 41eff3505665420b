#include "sys/vdso_layout.h"

#include <gtest/gtest.h>
#include <sys/auxv.h>

#include "base/io.h"

namespace cryo::sys {
namespace {

// Captured from a python3 process on this machine (kernel 6.18).
constexpr std::string_view kMaps618 =
    "7fa9b1cb0000-7fa9b1cb2000 rw-p 00000000 00:00 0 \n"
    "7fa9b1cb2000-7fa9b1cb6000 r--p 00000000 00:00 0                          [vvar]\n"
    "7fa9b1cb6000-7fa9b1cb8000 r--p 00000000 00:00 0                          [vvar_vclock]\n"
    "7fa9b1cb8000-7fa9b1cba000 r-xp 00000000 00:00 0                          [vdso]\n"
    "7ffc30680000-7ffc306a1000 rw-p 00000000 00:00 0                          [stack]\n";

TEST(VdsoLayout, ReadsSizesAndOffsetsOfTheThreeAreas) {
  uint64_t base = 0;
  auto l = ParseVdsoLayout(kMaps618, &base);
  ASSERT_TRUE(l) << l.error().Message();
  EXPECT_TRUE(l->found);
  EXPECT_EQ(base, 0x7fa9b1cb2000u);
  EXPECT_EQ(l->vvar_size, 0x4000u);
  EXPECT_EQ(l->vvar_offset, 0u);
  EXPECT_EQ(l->vvar_vclock_size, 0x2000u);
  EXPECT_EQ(l->vvar_vclock_offset, 0x4000u);
  EXPECT_EQ(l->vdso_size, 0x2000u);
  EXPECT_EQ(l->vdso_offset, 0x6000u);
}

TEST(VdsoLayout, OlderLayoutWithoutVclockHasZeroSize) {
  auto l = ParseVdsoLayout(
      "7ffd1000-7ffd5000 r--p 00000000 00:00 0      [vvar]\n"
      "7ffd5000-7ffd7000 r-xp 00000000 00:00 0      [vdso]\n");
  ASSERT_TRUE(l) << l.error().Message();
  EXPECT_EQ(l->vvar_vclock_size, 0u);
  EXPECT_EQ(l->vdso_offset, 0x4000u);
}

TEST(VdsoLayout, NoVdsoOrBadLineIsAnError) {
  EXPECT_FALSE(ParseVdsoLayout("7ffd1000-7ffd5000 r--p 00000000 00:00 0      [vvar]\n"));
  EXPECT_FALSE(ParseVdsoLayout("7ffd5000-zz r-xp 00000000 00:00 0      [vdso]\n"));
  EXPECT_FALSE(ParseVdsoLayout(""));
}

TEST(VdsoLayout, OwnVdsoIsWhereTheAuxVectorSays) {
  auto maps = ReadWholeFile("/proc/self/maps");
  ASSERT_TRUE(maps);
  uint64_t base = 0;
  auto l = ParseVdsoLayout(*maps, &base);
  ASSERT_TRUE(l) << l.error().Message();
  EXPECT_EQ(base + l->vdso_offset, getauxval(AT_SYSINFO_EHDR));
}

}  // namespace
}  // namespace cryo::sys
