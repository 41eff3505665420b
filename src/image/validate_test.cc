// Hostile images: each file re-encoded from a model that breaks one rule, bypassing the checks
// EncodeTree makes, must be refused by DecodeTree with an error naming the file and the fault.
#include "image/validate.h"

#include <gtest/gtest.h>

#include "base/check.h"
#include "image/codec.h"
#include "image/cryo.pb.h"
#include "image/image_file.h"
#include "image/test_util.h"

namespace cryo::image {
namespace {

using testing::MakeRichTree;
using testing::MapSource;
using testing::RichPagesSizes;

class HostileImage : public ::testing::Test {
 protected:
  HostileImage() : tree_(MakeRichTree()), source_(Encode(tree_), RichPagesSizes()) {}

  static EncodedFiles Encode(const model::ProcessTree& tree) {
    auto files = EncodeTree(tree);
    CRYO_CHECK(files.has_value());
    return std::move(*files);
  }
  // Re-encodes one per-process file of process `index` after `mutate`.
  template <typename Mutate>
  void Replace(std::string name, size_t index, Result<std::string> (*encode)(const model::Process&),
               Mutate mutate) {
    model::Process p = tree_.processes[index];
    mutate(p);
    auto bytes = encode(p);
    CRYO_CHECK(bytes.has_value());
    source_.files()[name] = std::move(*bytes);
  }
  void ReplacePstree(void (*mutate)(model::ProcessTree&)) {
    model::ProcessTree t = tree_;
    mutate(t);
    source_.files()["pstree.img"] = *EncodePstree(t);
  }
  void ReplaceRaw(const std::string& name, Kind kind, const google::protobuf::Message& m) {
    source_.files()[name] = FrameFile(kind, m.SerializeAsString());
  }
  // Expects DecodeTree to fail with a corrupt-image error containing `file` and `what`.
  void ExpectRejected(const std::string& file, const std::string& what) {
    auto tree = DecodeTree(source_);
    ASSERT_FALSE(tree) << "accepted; expected: " << what;
    EXPECT_EQ(tree.error().kind(), ErrorKind::kCorruptImage) << tree.error().Message();
    EXPECT_NE(tree.error().Message().find(file), std::string::npos) << tree.error().Message();
    EXPECT_NE(tree.error().Message().find(what), std::string::npos) << tree.error().Message();
  }

  model::ProcessTree tree_;
  MapSource source_;
};

TEST_F(HostileImage, PagemapRunOutsideAnyVma) {
  Replace("pagemap-102.img", 1, EncodePagemap,
          [](model::Process& p) { p.pagemap[0].vaddr = 0x300000; });
  ExpectRejected("pagemap-102.img", "page run 0 [0x300000-0x302000) is not inside one vma");
}

TEST_F(HostileImage, PagemapRunStraddlingTwoVmas) {
  Replace("pagemap-100.img", 0, EncodePagemap, [](model::Process& p) {
    p.pagemap = {{.vaddr = 0x405000, .nr_pages = 2, .offset = 0, .flags = model::kPageZero}};
  });
  ExpectRejected("pagemap-100.img", "not inside one vma");
}

TEST_F(HostileImage, PagemapRunInASharedVma) {
  Replace("pagemap-100.img", 0, EncodePagemap, [](model::Process& p) {
    p.pagemap = {{.vaddr = 0x7f0000000000, .nr_pages = 1, .offset = 0, .flags = model::kPageZero}};
  });
  ExpectRejected("pagemap-100.img", "not private");
}

TEST_F(HostileImage, PagemapOffsetBeyondPagesFile) {
  Replace("pagemap-100.img", 0, EncodePagemap,
          [](model::Process& p) { p.pagemap[0].offset = 3 * 4096; });  // 2 pages from 12 KiB
  ExpectRejected("pagemap-100.img", "not inside pages-100.img (16384 bytes)");
}

TEST_F(HostileImage, PagemapOffsetThatWouldOverflow) {
  Replace("pagemap-100.img", 0, EncodePagemap,
          [](model::Process& p) { p.pagemap[0].offset = ~uint64_t{0} & ~uint64_t{4095}; });
  ExpectRejected("pagemap-100.img", "not inside pages-100.img");
}

TEST_F(HostileImage, PagemapRunLengthThatWouldOverflow) {
  Replace("pagemap-100.img", 0, EncodePagemap,
          [](model::Process& p) { p.pagemap[0].nr_pages = uint64_t{1} << 52; });
  ExpectRejected("pagemap-100.img", "not a page-aligned range");
}

TEST_F(HostileImage, PagemapRunsUnalignedEmptyOverlappingOrBadFlags) {
  Replace("pagemap-100.img", 0, EncodePagemap, [](model::Process& p) { p.pagemap[0].vaddr += 1; });
  ExpectRejected("pagemap-100.img", "not a page-aligned range");
  Replace("pagemap-100.img", 0, EncodePagemap,
          [](model::Process& p) { p.pagemap[1].nr_pages = 0; });
  ExpectRejected("pagemap-100.img", "not a page-aligned range");
  Replace("pagemap-100.img", 0, EncodePagemap,
          [](model::Process& p) { p.pagemap[1].vaddr = 0x403000; });
  ExpectRejected("pagemap-100.img", "page run 1 at 0x403000 overlaps");
  Replace("pagemap-100.img", 0, EncodePagemap,
          [](model::Process& p) { p.pagemap[1].flags = model::kPageZero | model::kPageLazy; });
  ExpectRejected("pagemap-100.img", "contradictory flags");
  Replace("pagemap-100.img", 0, EncodePagemap, [](model::Process& p) {
    p.pagemap[1].flags = model::kPagePresent | model::kPageInParent;
  });
  ExpectRejected("pagemap-100.img", "contradictory flags");
  Replace("pagemap-100.img", 0, EncodePagemap, [](model::Process& p) { p.pagemap[1].flags = 32; });
  ExpectRejected("pagemap-100.img", "unknown flags");
  Replace("pagemap-100.img", 0, EncodePagemap, [](model::Process& p) { p.pagemap[1].flags = 0; });
  ExpectRejected("pagemap-100.img", "no flags");
  Replace("pagemap-100.img", 0, EncodePagemap,
          [](model::Process& p) { p.pagemap[0].offset = 100; });
  ExpectRejected("pagemap-100.img", "page run 0");
}

TEST_F(HostileImage, PagesFileNameEscapingTheDirectory) {
  for (const char* name : {"../pages-100.img", "/etc/passwd", "a/b", ".."}) {
    Replace("pagemap-100.img", 0, EncodePagemap, [&](model::Process& p) { p.pages_file = name; });
    ExpectRejected("pagemap-100.img", "is not a plain file name");
  }
}

TEST_F(HostileImage, OverlappingUnsortedOrUnalignedVmas) {
  Replace("mm-100.img", 0, EncodeMm, [](model::Process& p) { p.vmas[1].start = 0x400000; });
  ExpectRejected("mm-100.img", "vma 1 [0x400000-0x406000) overlaps");
  Replace("mm-100.img", 0, EncodeMm, [](model::Process& p) { std::swap(p.vmas[0], p.vmas[1]); });
  ExpectRejected("mm-100.img", "overlaps or precedes");
  Replace("mm-100.img", 0, EncodeMm, [](model::Process& p) { p.vmas[2].end += 5; });
  ExpectRejected("mm-100.img", "vma 2");
  Replace("mm-100.img", 0, EncodeMm, [](model::Process& p) { p.vmas[0].end = p.vmas[0].start; });
  ExpectRejected("mm-100.img", "vma 0");
  Replace("mm-100.img", 0, EncodeMm, [](model::Process& p) {
    model::Vma v;
    v.start = 0x7ffffffff000;
    v.end = 0x800000001000;
    p.vmas.push_back(v);
  });
  ExpectRejected("mm-100.img", "below 0x800000000000");
  Replace("mm-100.img", 0, EncodeMm, [](model::Process& p) { p.vmas[0].prot = 8; });
  ExpectRejected("mm-100.img", "unknown prot");
  Replace("mm-100.img", 0, EncodeMm, [](model::Process& p) { p.vmas[0].pgoff = 10; });
  ExpectRejected("mm-100.img", "not page-aligned");
}

TEST_F(HostileImage, UnknownEnumValues) {
  pb::Mm mm;
  mm.set_pid(100);
  pb::Vma* v = mm.add_vmas();
  v->set_start(0x1000);
  v->set_end(0x2000);
  v->set_kind(static_cast<pb::VmaKind>(9));
  ReplaceRaw("mm-100.img", Kind::kMm, mm);
  ExpectRejected("mm-100.img", "vma 0: unknown kind 9");

  pb::Fds fds;
  fds.set_pid(100);
  pb::Fd* fd = fds.add_fds();
  fd->set_fd(4);
  fd->set_type(static_cast<pb::FdType>(-3));
  source_ = MapSource(Encode(tree_), RichPagesSizes());
  ReplaceRaw("fds-100.img", Kind::kFds, fds);
  ExpectRejected("fds-100.img", "fd 4: unknown type -3");
}

TEST_F(HostileImage, FdsUnsortedDuplicatedOrNegative) {
  Replace("fds-102.img", 1, EncodeFds, [](model::Process& p) { p.fds[1].fd = 0; });
  ExpectRejected("fds-102.img", "not sorted or duplicated");
  Replace("fds-102.img", 1, EncodeFds, [](model::Process& p) { p.fds[0].fd = -1; });
  ExpectRejected("fds-102.img", "negative");
}

TEST_F(HostileImage, PipeDataLargerThanItsPipeOrOnOtherKinds) {
  Replace("fds-100.img", 0, EncodeFds, [](model::Process& p) { p.fds[4].pipe_size = 4; });
  ExpectRejected("fds-100.img", "exceed the pipe size 4");
  Replace("fds-100.img", 0, EncodeFds, [](model::Process& p) { p.fds[6].data = "x"; });
  ExpectRejected("fds-100.img", "holds data but is no pipe");
}

TEST_F(HostileImage, WrongNumberOfSigactionsOrRlimits) {
  Replace("core-100.img", 0, EncodeCore, [](model::Process& p) { p.sigactions.pop_back(); });
  ExpectRejected("core-100.img", "63 sigactions, expected 64");
  Replace("core-100.img", 0, EncodeCore, [](model::Process& p) { p.rlimits.pop_back(); });
  ExpectRejected("core-100.img", "15 rlimits, expected 16");
  source_ = MapSource(Encode(tree_), RichPagesSizes());
  pb::Core core;
  core.set_pid(100);
  for (int i = 0; i < 65; ++i) core.add_sigactions();
  ReplaceRaw("core-100.img", Kind::kCore, core);
  ExpectRejected("core-100.img", "Core.sigactions: more than 64 elements");
}

TEST_F(HostileImage, ThreadPointersTheKernelWouldReject) {
  Replace("core-100.img", 0, EncodeCore,
          [](model::Process& p) { p.threads[1].robust_list_len = 16; });
  ExpectRejected("core-100.img", "thread 101: robust list length 16");
  Replace("core-100.img", 0, EncodeCore, [](model::Process& p) { p.threads[1].rseq += 4; });
  ExpectRejected("core-100.img", "thread 101: rseq area");
  Replace("core-100.img", 0, EncodeCore,
          [](model::Process& p) { p.threads[0].comm = "name-of-16-bytes"; });
  ExpectRejected("core-100.img", "thread 100: name of 16 bytes");
}

TEST_F(HostileImage, CoreThreadsMustMatchPstree) {
  // Without the timers and filters that name thread 101 (those checks would come first).
  Replace("core-100.img", 0, EncodeCore, [](model::Process& p) {
    p.threads.pop_back();
    p.control = {};
  });
  ExpectRejected("core-100.img", "threads differ");
  Replace("core-100.img", 0, EncodeCore, [](model::Process& p) { p.threads.clear(); });
  ExpectRejected("core-100.img", "no threads");
  Replace("core-100.img", 0, EncodeCore, [](model::Process& p) { p.umask = 01000; });
  ExpectRejected("core-100.img", "umask");
}

TEST_F(HostileImage, ThreadWithoutRegistersOrBadSiginfo) {
  pb::Core core;
  core.set_pid(100);
  for (int i = 0; i < 4; ++i) {
    core.mutable_creds()->add_uids(0);
    core.mutable_creds()->add_gids(0);
  }
  core.add_threads()->set_tid(100);
  ReplaceRaw("core-100.img", Kind::kCore, core);
  ExpectRejected("core-100.img", "thread 100 has no registers");

  core.mutable_threads(0)->mutable_regs();
  core.mutable_threads(0)->add_pending("short");
  ReplaceRaw("core-100.img", Kind::kCore, core);
  ExpectRejected("core-100.img", "thread 100: pending: 5 bytes, a siginfo_t has 128");

  core.clear_creds();
  ReplaceRaw("core-100.img", Kind::kCore, core);
  ExpectRejected("core-100.img", "no credentials");
}

TEST_F(HostileImage, PstreeRules) {
  ReplacePstree([](model::ProcessTree& t) { t.processes.clear(); });
  ExpectRejected("pstree.img", "no processes");
  ReplacePstree([](model::ProcessTree& t) { std::swap(t.processes[0], t.processes[1]); });
  ExpectRejected("pstree.img", "process 100: parent 1 is not listed before it");
  ReplacePstree([](model::ProcessTree& t) { t.processes[1].pid = 100; });
  ExpectRejected("pstree.img", "first thread is 102");
  ReplacePstree([](model::ProcessTree& t) { t.processes[1].threads[0].tid = 101; });
  ExpectRejected("pstree.img", "first thread is 101");
  ReplacePstree([](model::ProcessTree& t) {
    t.processes[1].pid = 101;
    t.processes[1].threads[0].tid = 101;
  });
  ExpectRejected("pstree.img", "thread id 101 appears twice");
  ReplacePstree([](model::ProcessTree& t) { t.processes[1].threads.clear(); });
  ExpectRejected("pstree.img", "process 102 has no threads");
  ReplacePstree([](model::ProcessTree& t) {
    t.processes[0].pid = 0;
    t.processes[0].threads[0].tid = 0;
  });
  ExpectRejected("pstree.img", "pid 0 is not positive");
  ReplacePstree([](model::ProcessTree& t) { t.processes[1].sid = -4; });
  ExpectRejected("pstree.img", "negative");
  ReplacePstree([](model::ProcessTree& t) {
    t.processes.push_back(t.processes[1]);
    t.processes.back().threads[0].tid = t.processes.back().pid = 103;
    t.processes[1].ppid = 103;  // a cycle 102 -> 103 -> 102 through a later parent
    t.processes[2].ppid = 102;
  });
  ExpectRejected("pstree.img", "process 102: parent 103 is not listed before it");
}

TEST(Validate, AcceptsTheRichTreeFileByFile) {
  model::ProcessTree tree = MakeRichTree();
  EXPECT_TRUE(ValidatePstree(tree));
  for (const model::Process& p : tree.processes) {
    EXPECT_TRUE(ValidateCore(p));
    EXPECT_TRUE(ValidateMm(p));
    EXPECT_TRUE(ValidateFds(p));
    EXPECT_TRUE(ValidatePagemap(p, 4 * 4096));
    EXPECT_FALSE(ValidatePagemap(p, 4 * 4096 - 1));
  }
}

TEST(Validate, PagemapWithoutPresentRunsNeedsNoPagesFile) {
  model::Process p = MakeRichTree().processes[0];
  p.pagemap = {{.vaddr = 0x406000, .nr_pages = 4, .offset = 0, .flags = model::kPageInParent}};
  p.pages_file.clear();
  EXPECT_FALSE(NeedsPagesFile(p));
  EXPECT_TRUE(ValidatePagemap(p, 0));
}

TEST_F(HostileImage, PosixTimerNotifyingAThreadOutsideTheProcess) {
  Replace("core-100.img", 0, EncodeCore,
          [](model::Process& p) { p.control.posix_timers[1].notify_tid = 4242; });
  ExpectRejected("core-100.img", "notifies thread 4242");
}

TEST_F(HostileImage, PosixTimerIdsRepeated) {
  Replace("core-100.img", 0, EncodeCore,
          [](model::Process& p) { p.control.posix_timers[2].id = 4; });
  ExpectRejected("core-100.img", "posix timer ids not sorted");
}

TEST_F(HostileImage, PosixTimerWithUnknownNotify) {
  Replace("core-100.img", 0, EncodeCore,
          [](model::Process& p) { p.control.posix_timers[0].notify = 2; });
  ExpectRejected("core-100.img", "notify 2 unknown");
}

TEST_F(HostileImage, SeccompFilterNotWholeInstructions) {
  Replace("core-100.img", 0, EncodeCore,
          [](model::Process& p) { p.control.seccomp[0].filters[0].insns.pop_back(); });
  ExpectRejected("core-100.img", "31 bytes is not 1..4096 instructions");
}

TEST_F(HostileImage, SeccompForAThreadOfAnotherProcess) {
  Replace("core-100.img", 0, EncodeCore, [](model::Process& p) { p.control.seccomp[1].tid = 7; });
  ExpectRejected("core-100.img", "seccomp entry 1 is for tid 7");
}

TEST_F(HostileImage, PdeathsigOutOfRange) {
  Replace("core-100.img", 0, EncodeCore, [](model::Process& p) { p.control.pdeathsig = 65; });
  ExpectRejected("core-100.img", "pdeathsig 65 out of range");
}

TEST_F(HostileImage, PtySlaveWithoutItsMaster) {
  Replace("fds-100.img", 0, EncodeFds, [](model::Process& p) {
    model::Fd f;
    f.fd = 900;
    f.type = model::FdType::kPtySlave;
    f.tty.index = 5;
    p.fds.push_back(f);
  });
  ExpectRejected("fds-100.img", "pty slave 5 without its master");
}

TEST_F(HostileImage, PtyMasterWithShortTermios) {
  Replace("fds-100.img", 0, EncodeFds, [](model::Process& p) {
    model::Fd f;
    f.fd = 900;
    f.type = model::FdType::kPtyMaster;
    f.tty.cc = "abc";
    p.fds.push_back(f);
  });
  ExpectRejected("fds-100.img", "3 termios control characters, not 19");
}

}  // namespace
}  // namespace cryo::image

namespace cryo::image {
namespace {

using testing::MakeRichTree;
using testing::MapSource;
using testing::RichPagesSizes;

model::Process Zombie(pid_t pid, pid_t ppid, int32_t status) {
  model::Process z;
  z.pid = pid;
  z.ppid = ppid;
  z.pgid = 100;
  z.sid = 90;
  z.zombie = true;
  z.exit_status = status;
  z.threads.emplace_back().tid = pid;
  return z;
}

TEST(TreeImage, ZombiesRoundTripWithoutPerProcessFiles) {
  model::ProcessTree tree = MakeRichTree();
  tree.processes.push_back(Zombie(103, 102, 7 << 8));
  tree.processes.push_back(Zombie(104, 100, SIGTERM));
  tree.processes[0].control.child_subreaper = true;
  auto files = EncodeTree(tree);
  ASSERT_TRUE(files) << files.error().Message();
  EXPECT_FALSE(files->contains("core-103.img"));
  EXPECT_FALSE(files->contains("fds-104.img"));
  MapSource source(std::move(*files), RichPagesSizes());
  auto back = DecodeTree(source);
  ASSERT_TRUE(back) << back.error().Message();
  EXPECT_EQ(*back, tree);
}

// Decodes `tree` written with only the pstree checked (EncodePstree): the other checks are the
// reader's.
Error RejectionOf(const model::ProcessTree& tree) {
  auto files = EncodeTree(MakeRichTree());
  CRYO_CHECK(files.has_value());
  (*files)["pstree.img"] = *EncodePstree(tree);
  for (const model::Process& p : tree.processes) {
    if (!p.zombie && p.pid != 100 && p.pid != 102) (*files)[CoreFileName(p.pid)] = "";
  }
  MapSource source(std::move(*files), RichPagesSizes());
  auto back = DecodeTree(source);
  CRYO_CHECK(!back.has_value());
  return back.error();
}

TEST(TreeImage, RefusesBadZombies) {
  model::ProcessTree t = MakeRichTree();
  t.processes.push_back(Zombie(103, 100, 0x17f));  // a stop status, not an exit
  EXPECT_NE(RejectionOf(t).Message().find("zombie 103: 0x17f is not a wait status"),
            std::string::npos);
  t = MakeRichTree();
  t.processes.push_back(Zombie(103, 100, 65));  // signal 65
  EXPECT_NE(RejectionOf(t).Message().find("not a wait status"), std::string::npos);
  t = MakeRichTree();
  t.processes[1].exit_status = 256;
  EXPECT_NE(RejectionOf(t).Message().find("process 102 is no zombie but has an exit status"),
            std::string::npos);
  t = MakeRichTree();
  t.processes[0].zombie = true;
  t.processes[0].threads.resize(1);
  EXPECT_NE(RejectionOf(t).Message().find("the root process 100 is a zombie"), std::string::npos);
  t = MakeRichTree();
  t.processes.push_back(Zombie(103, 100, 0));
  t.processes.push_back(Zombie(104, 103, 0));
  EXPECT_NE(RejectionOf(t).Message().find("process 104: parent 103 is a zombie"),
            std::string::npos);
  t = MakeRichTree();
  t.processes.push_back(Zombie(103, 100, 0));
  t.processes.back().threads.emplace_back().tid = 105;
  EXPECT_NE(RejectionOf(t).Message().find("zombie 103 lists 2 threads"), std::string::npos);
}

// The first fd of `p` that is a regular file and no dup.
model::Fd& RegularFd(model::Process& p) {
  for (model::Fd& f : p.fds) {
    if (f.type == model::FdType::kRegular && f.shares_with == -1) return f;
  }
  CRYO_CHECK(false);
  return p.fds[0];
}

TEST(TreeImage, RefusesInconsistentSharedFiles) {
  model::ProcessTree t = MakeRichTree();
  // The same id on two fds of different kinds, in two processes.
  RegularFd(t.processes[0]).shared_file = 5;
  RegularFd(t.processes[1]).shared_file = 5;
  RegularFd(t.processes[1]).object_id = 999;
  auto files = EncodeTree(t);
  ASSERT_FALSE(files);
  EXPECT_NE(files.error().Message().find("shared file 5 is another file elsewhere"),
            std::string::npos)
      << files.error().Message();
  t = MakeRichTree();
  RegularFd(t.processes[0]).shared_file = kMaxSharedFiles + 1;
  files = EncodeTree(t);
  ASSERT_FALSE(files);
  EXPECT_NE(files.error().Message().find("out of range"), std::string::npos);
  t = MakeRichTree();
  for (model::Fd& f : t.processes[0].fds) {
    if (f.type == model::FdType::kInherited) f.shared_file = 4;
  }
  files = EncodeTree(t);
  ASSERT_FALSE(files);
  EXPECT_NE(files.error().Message().find("cannot carry a shared file id"), std::string::npos);
  t = MakeRichTree();
  RegularFd(t.processes[0]).shared_file = 3;
  RegularFd(t.processes[1]).shared_file = 3;
  RegularFd(t.processes[1]).object_id = RegularFd(t.processes[0]).object_id;
  files = EncodeTree(t);
  ASSERT_TRUE(files) << files.error().Message();
  MapSource source(std::move(*files), RichPagesSizes());
  auto back = DecodeTree(source);
  ASSERT_TRUE(back) << back.error().Message();
  EXPECT_EQ(*back, t);
}

// Ranges registered with the process's own userfaultfd need exactly one userfaultfd, past
// UFFDIO_API, and modes only on registered anon or shmem mappings; the fd round-trips.
TEST(Validate, OwnUserfaultfdAndItsRanges) {
  auto rejects = [](const model::Process& p, const std::string& what) {
    auto s = ValidateFds(p);
    ASSERT_FALSE(s) << what;
    EXPECT_NE(s.error().Message().find(what), std::string::npos) << s.error().Message();
  };
  model::Process p = MakeRichTree().processes[0];
  p.vmas[2].flags |= model::kVmaUffdRegistered | model::kVmaUffdMissing | model::kVmaUffdWp;
  EXPECT_TRUE(ValidateMm(p));
  rejects(p, "vma 2 [0x406000-0x40a000) is registered with userfaultfd, but the process has 0");
  model::Fd u;
  u.fd = 20;
  u.type = model::FdType::kUserfaultfd;
  u.flags = 04002;  // O_NONBLOCK | O_RDWR
  u.cloexec = true;
  u.kind_flags = model::kUffdApiDone;
  u.uffd_features = 0x100;  // UFFD_FEATURE_THREAD_ID
  p.fds.push_back(u);
  EXPECT_TRUE(ValidateFds(p));

  model::Process back = p;
  back.fds.clear();
  ASSERT_TRUE(DecodeFds(*EncodeFds(p), back));
  EXPECT_EQ(back.fds, p.fds);

  model::Process two = p;
  two.fds.push_back(u);
  two.fds.back().fd = 21;
  rejects(two, "the process has 2 userfaultfd fds");
  two.fds.back().shares_with = 20;  // a dup of the same userfaultfd is fine
  EXPECT_TRUE(ValidateFds(two));

  model::Process no_api = p;
  no_api.fds.back().kind_flags = 0;
  rejects(no_api, "userfaultfd features without UFFDIO_API");
  no_api.fds.back().uffd_features = 0;
  rejects(no_api, "(without UFFDIO_API)");

  model::Process bad = p;
  bad.fds.back().uffd_features = 1ull << 31;
  rejects(bad, "beyond bit 30");
  bad = p;
  bad.fds.back().shared_file = 1;
  rejects(bad, "fd 20: a userfaultfd shared across processes");
  bad = p;
  bad.fds[6].uffd_features = 0x100;  // the eventfd
  rejects(bad, "fd 10 has userfaultfd state but is no userfaultfd");
  bad = p;
  bad.vmas[2].flags &= ~model::kVmaUffdRegistered;
  rejects(bad, "vma 2: userfaultfd modes on a mapping not registered");
  bad = p;
  bad.vmas[1].flags |= model::kVmaUffdRegistered | model::kVmaUffdMinor;  // file private
  rejects(bad, "vma 1 [0x402000-0x406000): userfaultfd registration on a mapping of kind");
}

}  // namespace
}  // namespace cryo::image

namespace cryo::image {
namespace {

TEST_F(HostileImage, InheritedPagesNeedAParentMappingTheyCanComeFrom) {
  // Accepted: the child's run lies in a vma it can inherit from its parent's copy of it.
  Replace("pagemap-102.img", 1, EncodePagemap,
          [](model::Process& p) { p.pagemap[1].flags = model::kPageInherited; });
  ASSERT_TRUE(DecodeTree(source_)) << "a valid inherited run was refused";
  // Not alone.
  Replace("pagemap-102.img", 1, EncodePagemap,
          [](model::Process& p) { p.pagemap[1].flags = model::kPageInherited | model::kPageLazy; });
  ExpectRejected("pagemap-102.img", "contradictory flags");
  // The root has no parent in the tree.
  source_ = MapSource(Encode(tree_), RichPagesSizes());
  Replace("pagemap-100.img", 0, EncodePagemap,
          [](model::Process& p) { p.pagemap[1].flags = model::kPageInherited; });
  ExpectRejected("pagemap-100.img", "not a live process of the tree");
  // The child's mapping is at another file offset than the parent's: no source.
  source_ = MapSource(Encode(tree_), RichPagesSizes());
  Replace("pagemap-102.img", 1, EncodePagemap,
          [](model::Process& p) { p.pagemap[1].flags = model::kPageInherited; });
  Replace("mm-102.img", 1, EncodeMm, [](model::Process& p) { p.vmas[1].pgoff = 0x3000; });
  ExpectRejected("pagemap-102.img", "no mapping they can come from");
}

TEST_F(HostileImage, PageServerContentOnlyWhereLazyRestoreServes) {
  // Run 0 lies in a private file mapping: userfaultfd cannot serve it after the process runs.
  Replace("pagemap-100.img", 0, EncodePagemap,
          [](model::Process& p) { p.pagemap[0].flags = model::kPageLazy; });
  ExpectRejected("pagemap-100.img", "lazy content in a mapping lazy restore cannot serve");
}

TEST(Validate, WhatAMappingCanInheritFrom) {
  using model::Vma;
  using model::VmaKind;
  Vma parent{0x10000, 0x20000, 3, 0, VmaKind::kAnonPrivate, 0, "", {}};
  Vma inside{0x12000, 0x18000, 1, 0, VmaKind::kAnonPrivate, 0, "", {}};
  EXPECT_TRUE(model::CanInheritFrom(inside, parent));  // prot may differ: the blob sets it
  Vma beyond = inside;
  beyond.end = 0x21000;
  EXPECT_FALSE(model::CanInheritFrom(beyond, parent));
  Vma grows = inside;
  grows.flags = model::kVmaGrowsDown;
  EXPECT_FALSE(model::CanInheritFrom(grows, parent));
  Vma shared = inside;
  shared.kind = VmaKind::kAnonShared;
  EXPECT_FALSE(model::CanInheritFrom(shared, parent));

  Vma file_parent{0x10000, 0x20000, 3, 0, VmaKind::kFilePrivate, 0x5000, "/lib/x.so", {7, 8}};
  Vma file_child{0x14000, 0x16000, 3, 0, VmaKind::kFilePrivate, 0x9000, "/lib/x.so", {7, 8}};
  EXPECT_TRUE(model::CanInheritFrom(file_child, file_parent));
  file_child.pgoff = 0x8000;
  EXPECT_FALSE(model::CanInheritFrom(file_child, file_parent));
  file_child.pgoff = 0x9000;
  file_child.name = "/lib/y.so";
  EXPECT_FALSE(model::CanInheritFrom(file_child, file_parent));
  EXPECT_FALSE(model::CanInheritFrom(file_child, parent));

  std::vector<Vma> parents{file_parent,
                           Vma{0x30000, 0x40000, 3, 0, VmaKind::kAnonPrivate, 0, "", {}}};
  Vma anon{0x31000, 0x32000, 3, 0, VmaKind::kAnonPrivate, 0, "", {}};
  EXPECT_EQ(model::InheritSource(parents, anon), &parents[1]);
  anon.start = 0x2f000;  // starts before the parent's mapping
  EXPECT_EQ(model::InheritSource(parents, anon), nullptr);
}

}  // namespace
}  // namespace cryo::image
