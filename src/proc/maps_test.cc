#include "proc/maps.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "base/io.h"
#include "proc/fixture.h"

namespace cryo::proc {
namespace {

const MapsEntry* FindPath(const std::vector<MapsEntry>& maps, std::string_view path) {
  auto it =
      std::find_if(maps.begin(), maps.end(), [&](const MapsEntry& e) { return e.path == path; });
  return it == maps.end() ? nullptr : &*it;
}

MapsEntry ParseOne(std::string_view line) {
  auto maps = ParseMaps(line);
  EXPECT_TRUE(maps) << maps.error().Message();
  if (!maps || maps->size() != 1) return {};
  return (*maps)[0];
}

TEST(MapsParser, ReadsEveryLineOfCapturedPython3Maps) {
  std::string text = Fixture("python3.maps");
  auto maps = ParseMaps(text);
  ASSERT_TRUE(maps) << maps.error().Message();
  EXPECT_EQ(maps->size(), static_cast<size_t>(std::count(text.begin(), text.end(), '\n')));
  const MapsEntry& first = maps->front();
  EXPECT_EQ(first.start, 0x400000u);
  EXPECT_EQ(first.end, 0x41f000u);
  EXPECT_TRUE(first.read);
  EXPECT_FALSE(first.write);
  EXPECT_FALSE(first.exec);
  EXPECT_FALSE(first.shared);
  EXPECT_EQ(first.dev_major, 0xfeu);
  EXPECT_EQ(first.dev_minor, 0u);
  EXPECT_EQ(first.path, "/usr/bin/python3.11");
  EXPECT_FALSE(first.deleted);
  EXPECT_EQ((*maps)[1].offset, 0x1f000u);
  EXPECT_TRUE((*maps)[1].exec);
  for (size_t i = 1; i < maps->size(); ++i) EXPECT_LE((*maps)[i - 1].end, (*maps)[i].start);
}

TEST(MapsParser, KeepsPseudoPathsOfKernelMappings) {
  auto maps = ParseMaps(Fixture("python3.maps"));
  ASSERT_TRUE(maps) << maps.error().Message();
  for (const char* name : {"[heap]", "[stack]", "[vvar]", "[vvar_vclock]", "[vdso]"}) {
    const MapsEntry* e = FindPath(*maps, name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->inode, 0u) << name;
    EXPECT_FALSE(e->deleted) << name;
  }
  EXPECT_TRUE(FindPath(*maps, "[vdso]")->exec);
  EXPECT_EQ(FindPath(*maps, "[vvar_vclock]")->end - FindPath(*maps, "[vvar_vclock]")->start,
            0x2000u);
}

TEST(MapsParser, ReadsVsyscallAtTheTopOfTheAddressSpace) {
  MapsEntry e = ParseOne(
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n");
  EXPECT_EQ(e.start, 0xffffffffff600000u);
  EXPECT_EQ(e.end, 0xffffffffff601000u);
  EXPECT_FALSE(e.read);
  EXPECT_TRUE(e.exec);
  EXPECT_EQ(e.path, "[vsyscall]");
}

TEST(MapsParser, UnescapesNewlineAndKeepsSpacesInPath) {
  auto maps = ParseMaps(Fixture("python3.maps"));
  ASSERT_TRUE(maps) << maps.error().Message();
  const MapsEntry* e = FindPath(*maps, "/tmp/cryo-fixture/with space\nand newline");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->shared);
  EXPECT_TRUE(e->write);
  EXPECT_FALSE(e->deleted);
}

TEST(MapsParser, StripsDeletedSuffixAndFlagsIt) {
  auto maps = ParseMaps(Fixture("python3.maps"));
  ASSERT_TRUE(maps) << maps.error().Message();
  const MapsEntry* gone = FindPath(*maps, "/tmp/cryo-fixture/gone soon");
  ASSERT_NE(gone, nullptr);
  EXPECT_TRUE(gone->deleted);
  const MapsEntry* memfd = FindPath(*maps, "/memfd:cryo fixture");
  ASSERT_NE(memfd, nullptr);
  EXPECT_TRUE(memfd->deleted);
  EXPECT_NE(memfd->inode, 0u);
}

TEST(MapsParser, KeepsDeletedSuffixWhenThereIsNoInode) {
  MapsEntry e = ParseOne("7f00-8f00 rw-p 00000000 00:00 0      [anon:x (deleted)]");
  EXPECT_EQ(e.path, "[anon:x (deleted)]");
  EXPECT_FALSE(e.deleted);
}

TEST(MapsParser, ReadsNamedAnonymousMapping) {
  // Written by hand: this machine's kernel lacks CONFIG_ANON_VMA_NAME.
  MapsEntry e = ParseOne(
      "7f11cd000000-7f11cd003000 rw-p 00000000 00:00 0                          [anon:cryo "
      "fixture]");
  EXPECT_EQ(e.path, "[anon:cryo fixture]");
  EXPECT_EQ(e.inode, 0u);
  EXPECT_FALSE(e.deleted);
}

TEST(MapsParser, AnonymousMappingHasEmptyPathWithOrWithoutTrailingBlank) {
  EXPECT_EQ(ParseOne("7f40fe835000-7f40fe857000 rw-p 00000000 00:00 0 ").path, "");
  EXPECT_EQ(ParseOne("7f40fe835000-7f40fe857000 rw-p 00000000 00:00 0").path, "");
}

TEST(MapsParser, KeepsBlanksAtTheEndOfAPath) {
  EXPECT_EQ(ParseOne("1000-2000 r--p 00000000 08:01 12    /tmp/trailing  ").path,
            "/tmp/trailing  ");
}

TEST(MapsParser, ReadsDeviceMajorAbove255AndLargeInode) {
  MapsEntry e = ParseOne("1000-2000 r--s 7ffff000 103:0a 18446744073709551615 /dev/nvme");
  EXPECT_EQ(e.dev_major, 0x103u);
  EXPECT_EQ(e.dev_minor, 0xau);
  EXPECT_EQ(e.inode, 18446744073709551615u);
  EXPECT_EQ(e.offset, 0x7ffff000u);
  EXPECT_TRUE(e.shared);
}

TEST(MapsParser, EmptyTextGivesNoEntries) {
  auto maps = ParseMaps("");
  ASSERT_TRUE(maps);
  EXPECT_TRUE(maps->empty());
}

TEST(MapsParser, MalformedLinesGiveErrors) {
  for (const char* line : {
           "\n",
           "1000-2000 r--p 00000000 00:00 0\n\n",
           "garbage",
           "1000 r--p 00000000 00:00 0",
           "1000- r--p 00000000 00:00 0",
           "2000-1000 r--p 00000000 00:00 0",
           "1000-1000 r--p 00000000 00:00 0",
           "1000-2000 r--q 00000000 00:00 0",
           "1000-2000 rw- 00000000 00:00 0",
           "1000-2000 xwrp 00000000 00:00 0",
           "1000-2000 r--p 0000zz00 00:00 0",
           "1000-2000 r--p 00000000 0000 0",
           "1000-2000 r--p 00000000 00:00",
           "1000-2000 r--p 00000000 00:00 12a /x",
           "1000-2000 r--p 00000000 00:00 0/x",
           "1000-10000000000000000000 r--p 00000000 00:00 0",
           "-1000-2000 r--p 00000000 00:00 0",
       }) {
    auto maps = ParseMaps(line);
    EXPECT_FALSE(maps) << "accepted: \"" << line << "\"";
  }
}

TEST(MapsParser, ErrorNamesLineNumberAndQuotesTheLine) {
  auto maps = ParseMaps("1000-2000 r--p 00000000 00:00 0\n3000-2000 r--p 00000000 00:00 0\n");
  ASSERT_FALSE(maps);
  EXPECT_EQ(maps.error().kind(), ErrorKind::kInternal);
  EXPECT_NE(maps.error().Message().find("line 2"), std::string::npos) << maps.error().Message();
  EXPECT_NE(maps.error().Message().find("\"3000-2000 r--p"), std::string::npos);
}

TEST(MapsParser, EveryPrefixOfRealMapsParsesOrFailsCleanly) {
  std::string text = Fixture("python3.maps");
  size_t ok = 0;
  for (size_t len = 0; len <= text.size(); ++len) {
    auto maps = ParseMaps(std::string_view(text).substr(0, len));
    if (maps) ++ok;
  }
  EXPECT_GT(ok, 0u);
}

TEST(MapsParser, ParsesHundredThousandLinesQuickly) {
  constexpr size_t kLines = 100000;
  std::string text;
  text.reserve(kLines * 100);
  for (size_t i = 0; i < kLines; ++i) {
    uint64_t start = 0x7f0000000000 + i * 0x2000;
    if (i % 3 == 0) {
      text += fmt::format("{:x}-{:x} rw-p 00000000 00:00 0 \n", start, start + 0x1000);
    } else {
      text += fmt::format("{:x}-{:x} r-xs {:08x} fe:01 {}                   /lib/file {}.so\n",
                          start, start + 0x1000, i * 0x1000, 100000 + i, i);
    }
  }
  auto begin = std::chrono::steady_clock::now();
  auto maps = ParseMaps(text);
  auto took = std::chrono::steady_clock::now() - begin;
  ASSERT_TRUE(maps) << maps.error().Message();
  ASSERT_EQ(maps->size(), kLines);
  const MapsEntry& file = (*maps)[99998];
  EXPECT_EQ(file.path, "/lib/file 99998.so");
  EXPECT_EQ(file.offset, 99998u * 0x1000);
  EXPECT_EQ(file.inode, 199998u);
  EXPECT_EQ(file.start, 0x7f0000000000u + 99998 * 0x2000);
  EXPECT_TRUE(file.shared && file.exec && !file.write);
  const MapsEntry& anon = (*maps)[99999];
  EXPECT_EQ(anon.path, "");
  EXPECT_EQ(anon.inode, 0u);
  // ~10 ms here; the bound only catches accidental quadratic work.
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), 1000);
}

TEST(MapsParser, FindsAFreshMappingInOwnMaps) {
  void* p = mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  // A PROT_NONE guard page keeps the kernel from merging it with a neighbour.
  ASSERT_EQ(mprotect(static_cast<char*>(p) + 2 * 4096, 4096, PROT_NONE), 0);
  auto text = ReadWholeFile("/proc/self/maps");
  ASSERT_TRUE(text);
  auto maps = ParseMaps(*text);
  ASSERT_TRUE(maps) << maps.error().Message();
  uint64_t addr = reinterpret_cast<uint64_t>(p);
  auto it = std::find_if(maps->begin(), maps->end(),
                         [&](const MapsEntry& e) { return e.start <= addr && addr < e.end; });
  ASSERT_NE(it, maps->end());
  EXPECT_TRUE(it->read && it->write && !it->exec && !it->shared);
  EXPECT_EQ(it->end, addr + 2 * 4096);
  munmap(p, 3 * 4096);
}

}  // namespace
}  // namespace cryo::proc
