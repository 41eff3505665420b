#include "proc/smaps.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "base/io.h"
#include "proc/fixture.h"

namespace cryo::proc {
namespace {

const SmapsEntry* FindPath(const std::vector<SmapsEntry>& smaps, std::string_view path) {
  auto it = std::find_if(smaps.begin(), smaps.end(),
                         [&](const SmapsEntry& e) { return e.map.path == path; });
  return it == smaps.end() ? nullptr : &*it;
}

TEST(SmapsParser, HasOneEntryPerMappingOfCapturedPython3) {
  std::string text = Fixture("python3.smaps");
  auto smaps = ParseSmaps(text);
  ASSERT_TRUE(smaps) << smaps.error().Message();
  auto maps = ParseMaps(Fixture("python3.maps"));
  ASSERT_TRUE(maps);
  // Captured by the same process a moment apart: the same mappings.
  ASSERT_EQ(smaps->size(), maps->size());
  for (size_t i = 0; i < maps->size(); ++i) {
    EXPECT_EQ((*smaps)[i].map.start, (*maps)[i].start);
    EXPECT_EQ((*smaps)[i].map.path, (*maps)[i].path);
    EXPECT_FALSE((*smaps)[i].vm_flags.empty()) << (*smaps)[i].map.path;
  }
}

TEST(SmapsParser, ReadsCountersAndFlagsOfHeapAndStack) {
  auto smaps = ParseSmaps(Fixture("python3.smaps"));
  ASSERT_TRUE(smaps) << smaps.error().Message();
  const SmapsEntry* heap = FindPath(*smaps, "[heap]");
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ(heap->rss_kb, 1024u);
  EXPECT_EQ(heap->pss_kb, 1024u);
  EXPECT_EQ(heap->anonymous_kb, 1024u);
  EXPECT_EQ(heap->swap_kb, 0u);
  EXPECT_EQ(heap->vm_flags, (std::vector<std::string>{"rd", "wr", "mr", "mw", "me", "ac"}));
  const SmapsEntry* stack = FindPath(*smaps, "[stack]");
  ASSERT_NE(stack, nullptr);
  EXPECT_TRUE(stack->HasFlag("gd"));
  EXPECT_FALSE(heap->HasFlag("gd"));
  const SmapsEntry* vvar = FindPath(*smaps, "[vvar_vclock]");
  ASSERT_NE(vvar, nullptr);
  EXPECT_TRUE(vvar->HasFlag("pf"));
  EXPECT_TRUE(vvar->HasFlag("io"));
}

TEST(SmapsParser, AssignsCountersToTheMappingAboveThem) {
  auto smaps = ParseSmaps(
      "1000-3000 rw-p 00000000 00:00 0 \n"
      "Rss:                   8 kB\n"
      "Swap:                  4 kB\n"
      "THPeligible:    0\n"
      "VmFlags: rd wr mr mw me ac wf \n"
      "5000-6000 r--p 00000000 fe:00 12    /x y\n"
      "Rss:                   4 kB\n"
      "Anonymous:             0 kB\n"
      "AnonHugePages:      2048 kB\n"
      "VmFlags: rd mr mw me dd\n");
  ASSERT_TRUE(smaps) << smaps.error().Message();
  ASSERT_EQ(smaps->size(), 2u);
  EXPECT_EQ((*smaps)[0].rss_kb, 8u);
  EXPECT_EQ((*smaps)[0].swap_kb, 4u);
  EXPECT_TRUE((*smaps)[0].HasFlag("wf"));
  EXPECT_EQ((*smaps)[1].map.path, "/x y");
  EXPECT_EQ((*smaps)[1].rss_kb, 4u);
  EXPECT_EQ((*smaps)[1].anon_huge_kb, 2048u);
  EXPECT_EQ((*smaps)[1].vm_flags.size(), 5u);
}

TEST(SmapsParser, CounterBeforeAnyMappingIsAnError) {
  EXPECT_FALSE(ParseSmaps("Rss: 4 kB\n1000-2000 r--p 00000000 00:00 0\n"));
}

TEST(SmapsParser, MalformedCounterOrHeaderIsAnError) {
  EXPECT_FALSE(ParseSmaps("1000-2000 r--p 00000000 00:00 0\nRss: four kB\n"));
  EXPECT_FALSE(ParseSmaps("1000-2000 r--p 00000000 00:00 0\nRss: 4 MB\n"));
  EXPECT_FALSE(ParseSmaps("1000-2000 r--p 00000000 00:00 0\nnonsense\n"));
}

TEST(SmapsParser, SeesResidentPagesOfAFreshMappingInOwnSmaps) {
  constexpr size_t kLen = 8 * 4096;
  void* p = mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(madvise(p, kLen, MADV_DONTFORK), 0);  // "dc", and keeps it apart from neighbours
  std::memset(p, 1, 3 * 4096);
  auto text = ReadWholeFile("/proc/self/smaps");
  ASSERT_TRUE(text);
  auto smaps = ParseSmaps(*text);
  ASSERT_TRUE(smaps) << smaps.error().Message();
  uint64_t addr = reinterpret_cast<uint64_t>(p);
  auto it = std::find_if(smaps->begin(), smaps->end(),
                         [&](const SmapsEntry& e) { return e.map.start == addr; });
  ASSERT_NE(it, smaps->end());
  EXPECT_EQ(it->map.end, addr + kLen);
  EXPECT_EQ(it->rss_kb, 12u);
  EXPECT_EQ(it->anonymous_kb, 12u);
  EXPECT_TRUE(it->HasFlag("dc"));
  munmap(p, kLen);
}

}  // namespace
}  // namespace cryo::proc
