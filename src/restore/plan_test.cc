#include "restore/plan.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdio>
#include <string>

#include "restore/finalize.h"
#include "restorer/abi.h"
#include "restorer/blob.h"

namespace cryo::restore {
namespace {

model::Vma MakeVma(uint64_t start, uint64_t end, model::VmaKind kind, const char* name = "") {
  model::Vma v;
  v.start = start;
  v.end = end;
  v.kind = kind;
  v.prot = PROT_READ | PROT_WRITE;
  v.name = name;
  return v;
}

TEST(Plan, KeepRegionAvoidsTargetAndSelfMappingsAndHoldsEveryPremap) {
  model::Process p;
  p.vmas = {MakeVma(0x400000, 0x401000, model::VmaKind::kFilePrivate),
            MakeVma(0x100000000, 0x100010000, model::VmaKind::kAnonPrivate),
            MakeVma(0x7f0000000000, 0x7f0000004000, model::VmaKind::kVvar, "[vvar]"),
            MakeVma(0x7f0000006000, 0x7f0000008000, model::VmaKind::kVdso, "[vdso]"),
            MakeVma(0x7ffd00000000, 0x7ffd00021000, model::VmaKind::kAnonPrivate, "[stack]")};
  std::vector<Interval> self = {{0x100020000, 0x100100000}};
  auto plan = MakePlan(p, self, 5000, 3000);
  ASSERT_TRUE(plan) << plan.error().Message();
  auto overlaps = [&](uint64_t s, uint64_t e) {
    return s < plan->keep_end && plan->keep_start < e;
  };
  for (const auto& v : p.vmas) EXPECT_FALSE(overlaps(v.start, v.end)) << v.name;
  EXPECT_FALSE(overlaps(0x100020000, 0x100100000));
  ASSERT_EQ(plan->premap.size(), 3u);
  EXPECT_EQ(plan->vdso_vvar_start, 0x7f0000000000u);
  EXPECT_EQ(plan->blob_size, 8192u);
  uint64_t prev_end = plan->stack_top;
  for (const auto& s : plan->premap) {
    const auto& v = p.vmas[s.vma_index];
    EXPECT_GT(s.addr, prev_end);  // a guard page between areas
    EXPECT_LE(s.addr + v.length(), plan->keep_end);
    prev_end = s.addr + v.length();
  }
}

TEST(Plan, ThreadStacksSitAboveTheLeaderStackBeforeThePremapArea) {
  model::Process p;
  p.vmas = {MakeVma(0x100000000, 0x100010000, model::VmaKind::kAnonPrivate)};
  p.threads.resize(3);
  auto plan = MakePlan(p, {}, 4096, 4096);
  ASSERT_TRUE(plan) << plan.error().Message();
  EXPECT_EQ(plan->thread_stacks_bytes, 2 * restorer::kThreadStackSize);
  ASSERT_EQ(plan->premap.size(), 1u);
  // Thread i's stack top is stack_top + i * kThreadStackSize; the last one is below the premap.
  EXPECT_GT(plan->premap[0].addr, plan->stack_top + 2 * restorer::kThreadStackSize);
  EXPECT_LE(plan->premap[0].addr + 0x10000, plan->keep_end);
}

TEST(Plan, ArenaGrowsWithThreadsAndTheirPendingSignals) {
  model::Process p;
  p.threads.resize(1);
  const uint64_t one = ArenaBytes(p, 1);
  p.threads.resize(3);
  p.threads[2].pending.resize(2);
  p.threads[0].pending.resize(5);  // the leader's are queued by cryo's code, not the arena
  EXPECT_EQ(ArenaBytes(p, 1),
            one + 2 * sizeof(restorer::ThreadSpec) + 2 * sizeof(restorer::QueuedSignal));
}

TEST(ResumeRegisters, InterruptedSyscallIsRewoundToRunAgain) {
  model::GpRegs r{};
  r.orig_rax = 7;                       // poll
  r.rax = static_cast<uint64_t>(-512);  // -ERESTARTSYS
  r.rip = 0x1002;
  auto out = ResumeRegisters(r);
  EXPECT_EQ(out.rax, 7u);
  EXPECT_EQ(out.rip, 0x1000u);
  EXPECT_EQ(out.orig_rax, ~0ull);
}

TEST(ResumeRegisters, RestartBlockBecomesEintrAndOtherStatesStay) {
  model::GpRegs r{};
  r.orig_rax = 230;  // clock_nanosleep
  r.rax = static_cast<uint64_t>(-516);
  r.rip = 0x2002;
  auto out = ResumeRegisters(r);
  EXPECT_EQ(static_cast<int64_t>(out.rax), -4);
  EXPECT_EQ(out.rip, 0x2002u);
  model::GpRegs user{};
  user.orig_rax = ~0ull;
  user.rax = 42;
  user.rip = 0x3000;
  auto same = ResumeRegisters(user);
  EXPECT_EQ(same.rax, 42u);
  EXPECT_EQ(same.rip, 0x3000u);
}

}  // namespace
}  // namespace cryo::restore

namespace cryo::restore {
namespace {

// The image's vdso/vvar areas as this process has them, with a given vdso hash.
model::Process ProcessWithOurVdsoLayout(uint64_t vdso_hash) {
  model::Process p;
  p.pid = 1;
  FILE* f = std::fopen("/proc/self/maps", "r");
  char line[512];
  while (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long s = 0, e = 0;
    std::sscanf(line, "%lx-%lx", &s, &e);
    std::string text(line);
    for (const char* name : {"[vvar]", "[vvar_vclock]", "[vdso]"}) {
      if (text.find(std::string(name) + "\n") != std::string::npos) {
        auto kind = std::string(name) == "[vdso]" ? model::VmaKind::kVdso : model::VmaKind::kVvar;
        p.vmas.push_back(MakeVma(s, e, kind, name));
      }
    }
  }
  if (f != nullptr) std::fclose(f);
  p.mm.vdso_hash = vdso_hash;
  return p;
}

TEST(CheckRestorable, RefusesAnImageWhoseVdsoCodeDiffersFromThisKernels) {
  auto p = ProcessWithOurVdsoLayout(0x1234);
  auto s = CheckRestorable(p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::kUnsupported);
  EXPECT_NE(s.error().Message().find("vdso code differs"), std::string::npos)
      << s.error().Message();
}

}  // namespace
}  // namespace cryo::restore
