#include "image/test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "base/check.h"
#include "image/format.h"

namespace cryo::image::testing {
namespace {

using model::PageRun;
using model::Vma;
using model::VmaKind;

model::SigInfo Sig(uint8_t seed) {
  model::SigInfo s;
  for (size_t i = 0; i < s.raw.size(); ++i) s.raw[i] = static_cast<uint8_t>(seed + i * 7);
  return s;
}

model::GpRegs Regs(uint64_t base) {
  return model::GpRegs{base + 1,  base + 2,  base + 3,  base + 4,  base + 5,  base + 6,  base + 7,
                       base + 8,  base + 9,  base + 10, base + 11, base + 12, base + 13, base + 14,
                       base + 15, base + 16, base + 17, base + 18, base + 19, base + 20, base + 21,
                       base + 22, base + 23, base + 24, base + 25, base + 26, base + 27};
}

model::Thread MakeThread(pid_t tid, uint64_t seed) {
  model::Thread t;
  t.tid = tid;
  t.regs = Regs(seed << 8);
  t.xstate.resize(1088);
  for (size_t i = 0; i < t.xstate.size(); ++i) t.xstate[i] = static_cast<char>(seed + i);
  t.blocked = 0x10000 | seed;
  t.pending = {Sig(static_cast<uint8_t>(seed)), Sig(static_cast<uint8_t>(seed + 1))};
  t.altstack = {.sp = 0x7f0000010000 + seed, .flags = 2, .size = 8192 + seed};
  t.rseq = 0x7f0000020000 + seed * 32;
  t.rseq_len = 32;
  t.rseq_sig = 0x53053053;
  t.robust_list = 0x7f0000030000 + seed * 8;
  t.robust_list_len = 24;
  t.clear_child_tid = 0x7f0000040000 + seed * 4;
  t.comm = "worker-" + std::to_string(seed);
  return t;
}

void FillCommon(model::Process& p, uint64_t seed) {
  p.comm = "victim-" + std::to_string(seed);
  p.umask = 027;
  p.cwd = "/home/user/dir with space";
  p.root = "/srv/root";
  p.creds.uids = {1000, 1001, 1002, 1003};
  p.creds.gids = {2000, 2001, 2002, 2003};
  p.creds.groups = {4, 24, 27, 1000 + static_cast<uint32_t>(seed)};
  p.creds.cap_inh = 1;
  p.creds.cap_prm = 2;
  p.creds.cap_eff = 3;
  p.creds.cap_bnd = 0x1ffffffffff;
  p.creds.cap_amb = 5;
  for (int i = 0; i < model::kNumRlimits; ++i) {
    p.rlimits.push_back({.cur = 100u * i + seed, .max = ~uint64_t{0} - i});
  }
  for (int i = 0; i < model::kNumSignals; ++i) {
    p.sigactions.push_back({.handler = i % 3 == 0 ? 0 : 0x401000u + i,
                            .flags = 0x04000000u | i,
                            .restorer = 0x7f0000001000 + seed,
                            .mask = uint64_t{1} << i});
  }
  p.shared_pending = {Sig(static_cast<uint8_t>(200 + seed))};
  p.mm = {.start_code = 0x400000,
          .end_code = 0x401000,
          .start_data = 0x402000,
          .end_data = 0x403000,
          .start_brk = 0x404000,
          .brk = 0x406000,
          .start_stack = 0x7ffc00000000,
          .arg_start = 0x7ffc00001000,
          .arg_end = 0x7ffc00001100,
          .env_start = 0x7ffc00001100,
          .env_end = 0x7ffc00001f00,
          .auxv = {33, 0x7ffc0000a000, 16, 0xbfebfbff, 6, 4096, 0, 0},
          .exe_path = "/usr/bin/victim",
          .exe_file = {.size = 12345, .mtime_ns = 1700000000123}};
  using model::FileId;
  auto vma = [](uint64_t start, uint64_t end, uint32_t prot, uint32_t flags, VmaKind kind,
                uint64_t pgoff, std::string name, FileId file) {
    return Vma{start, end, prot, flags, kind, pgoff, std::move(name), file};
  };
  p.vmas = {
      vma(0x400000, 0x401000, 5, model::kVmaDontDump, VmaKind::kFilePrivate, 0, "/usr/bin/victim",
          FileId{12345, 1700000000123}),
      vma(0x402000, 0x406000, 3, 0, VmaKind::kFilePrivate, 0x2000, "/usr/bin/victim",
          FileId{12345, 7}),
      vma(0x406000, 0x40a000, 3, model::kVmaHugePage, VmaKind::kAnonPrivate, 0, "[heap]", {}),
      vma(0x7f0000000000, 0x7f0000004000, 3, model::kVmaUffdRegistered, VmaKind::kAnonShared, 0,
          "/dev/zero", {}),
      vma(0x7f0000004000, 0x7f0000005000, 1, 0, VmaKind::kFileShared, 0x5000,
          "/tmp/\xff\xfe odd\nname", FileId{1 << 20, -5}),
      vma(0x7f0000010000, 0x7f0000012000, 1, 0, VmaKind::kSysvShm, 0x1000, "/SYSV0000002a", {}),
      vma(0x7f0000020000, 0x7f0000022000, 3, 0, VmaKind::kFilePrivate, 0, "/memfd:buf", {}),
      vma(0x7ffc00000000, 0x7ffc00021000, 3, model::kVmaGrowsDown | model::kVmaLocked,
          VmaKind::kAnonPrivate, 0, "[stack]", {}),
      vma(0x7ffc00100000, 0x7ffc00104000, 1, 0, VmaKind::kVvar, 0, "[vvar]", {}),
      vma(0x7ffc00104000, 0x7ffc00106000, 5, 0, VmaKind::kVdso, 0, "[vdso]", {}),
  };
  auto fd = [](int num, model::FdType type, std::string path, uint32_t flags, bool cloexec,
               uint64_t pos, uint64_t rdev, FileId file) {
    model::Fd f;
    f.fd = num;
    f.type = type;
    f.path = std::move(path);
    f.flags = flags;
    f.cloexec = cloexec;
    f.pos = pos;
    f.rdev = rdev;
    f.file = file;
    return f;
  };
  p.fds = {
      fd(0, model::FdType::kInherited, "pipe:[1234]", 0, false, 0, 0, {}),
      fd(1, model::FdType::kCharDevice, "/dev/null", 1, false, 0, 0x103, {}),
      fd(3, model::FdType::kRegular, "/var/log/victim.log", 02001, true, 4242, 0, FileId{5000, 99}),
      fd(7, model::FdType::kDirectory, "/etc", 0200000, true, 0, 0, {}),
      fd(8, model::FdType::kPipe, "pipe:[77]", 0, false, 0, 0, {}),
      fd(9, model::FdType::kPipe, "pipe:[77]", 04001, false, 0, 0, {}),
      fd(10, model::FdType::kEventfd, "anon_inode:[eventfd]", 2, true, 0, 0, {}),
      fd(11, model::FdType::kSignalfd, "anon_inode:[signalfd]", 0, false, 0, 0, {}),
      fd(12, model::FdType::kTimerfd, "anon_inode:[timerfd]", 0, false, 0, 0, {}),
      fd(13, model::FdType::kEpoll, "anon_inode:[eventpoll]", 02, true, 0, 0, {}),
      fd(14, model::FdType::kUnixPair, "socket:[500]", 02, false, 0, 0, {}),
      fd(15, model::FdType::kInotify, "anon_inode:inotify", 0, false, 0, 0, {}),
      fd(16, model::FdType::kShmem, "/memfd:buf (deleted)", 02, true, 77, 0, {}),
  };
  p.vmas[3].shmem_id = 1;
  p.vmas[5].shmem_id = 3;
  p.vmas[6].shmem_id = 2;
  p.fds[12].shmem_id = 2;
  for (int i : {4, 5}) {
    p.fds[i].object_id = 77;
    p.fds[i].pipe_size = 65536;
  }
  p.fds[4].data = std::string("buffered\0bytes", 14);
  p.fds[6].counter = 1ull << 40;
  p.fds[6].kind_flags = model::kEventfdSemaphore;
  p.fds[7].signal_mask = 1ull << 9;
  p.fds[8].clockid = 1;
  p.fds[8].value_ns = 1'500'000'000;
  p.fds[8].interval_ns = 250'000'000;
  p.fds[9].epoll_targets = {{8, 0x80000001u, 0xdeadbeefcafeull, 77}, {10, 4, 10, 1038}};
  p.fds[10].object_id = 500;
  p.fds[10].peer_id = 501;
  p.fds[10].sock_type = 2;
  p.fds[10].messages = {"one", std::string("t\0o", 3), ""};
  p.fds[11].watches = {{1, 0x100, "/tmp"}, {3, 0xfff, "/var/odd\nname"}};
  p.fds[2].locks = {{model::LockKind::kPosix, true, 10, 29},
                    {model::LockKind::kFlock, false, 0, UINT64_MAX}};
  p.pages_file = PagesFileName(p.pid);
  p.pagemap = {
      PageRun{.vaddr = 0x402000, .nr_pages = 2, .offset = 0, .flags = model::kPagePresent},
      PageRun{.vaddr = 0x404000, .nr_pages = 1, .offset = 0, .flags = model::kPageZero},
      PageRun{.vaddr = 0x406000, .nr_pages = 2, .offset = 0, .flags = model::kPageInParent},
      PageRun{.vaddr = 0x408000,
              .nr_pages = 1,
              .offset = 0x2000,
              .flags = model::kPagePresent | model::kPageLazy},
      PageRun{.vaddr = 0x409000, .nr_pages = 1, .offset = 0, .flags = model::kPageLazy},
      PageRun{
          .vaddr = 0x7ffc00020000, .nr_pages = 1, .offset = 0x3000, .flags = model::kPagePresent},
  };
}

}  // namespace

// Timers of every kind, flags and two threads' seccomp chains (the second shares the first
// filter).
model::TaskControl MakeTaskControl() {
  model::TaskControl c;
  c.itimers[0] = {.value_ns = 5'000'000'000, .interval_ns = 700'000'000};
  c.itimers[2] = {.value_ns = 1'000'000, .interval_ns = 0};
  c.posix_timers = {
      {.id = 0, .clockid = 1, .notify = 0, .signo = 37, .sigval = 777, .value_ns = 6'000'000'000},
      {.id = 4, .clockid = 1, .notify = 4, .signo = 38, .notify_tid = 101, .overrun = 3},
      {.id = 9, .clockid = -6, .notify = 1, .value_ns = 1, .interval_ns = 2}};
  c.pdeathsig = 28;
  c.child_subreaper = true;
  model::SeccompFilter a{.flags = 0, .insns = std::string(32, '\x11')};
  model::SeccompFilter b{.flags = 2, .insns = std::string(8, '\x22')};
  c.seccomp = {{.tid = 100, .filters = {a, b}}, {.tid = 101, .filters = {a}}};
  return c;
}

model::ProcessTree MakeRichTree() {
  model::ProcessTree tree;
  tree.root_pid = 100;
  model::Process root;
  root.pid = 100;
  root.ppid = 1;
  root.pgid = 100;
  root.sid = 90;
  root.threads = {MakeThread(100, 1), MakeThread(101, 2)};
  FillCommon(root, 1);
  root.control = MakeTaskControl();
  model::Process child;
  child.pid = 102;
  child.ppid = 100;
  child.pgid = 100;
  child.sid = 90;
  child.threads = {MakeThread(102, 3)};
  FillCommon(child, 2);
  child.umask = 077;
  tree.processes = {std::move(root), std::move(child)};
  // Shared by both processes: each maps the anon object, the segment and the memfd.
  tree.shmem.pages_file = "pages-shmem.img";
  model::ShmemObject anon;
  anon.id = 1;
  anon.kind = model::ShmemKind::kAnon;
  anon.size = 0x4000;
  anon.mode = 0777;
  anon.dev = 1;
  anon.ino = 4242;
  anon.runs = {{0, 1, 0x1000}, {0x2000, 2, 0x2000}};
  model::ShmemObject memfd;
  memfd.id = 2;
  memfd.kind = model::ShmemKind::kMemfd;
  memfd.size = 10000;
  memfd.name = "buf";
  memfd.mode = 0600;
  memfd.seals = 0x1 | 0x8;
  memfd.runs = {{0x2000, 1, 0}};
  model::ShmemObject sysv;
  sysv.id = 3;
  sysv.kind = model::ShmemKind::kSysv;
  sysv.size = 0x3000;
  sysv.mode = 0640;
  sysv.flags = model::kShmemSysvRemoved;
  sysv.sysv_key = 42;
  sysv.sysv_id = 32768;
  sysv.uid = 1000;
  sysv.gid = 100;
  tree.shmem.objects = {anon, memfd, sysv};
  return tree;
}

std::map<std::string, uint64_t> RichPagesSizes() {
  return {{"pages-100.img", 4 * 4096}, {"pages-102.img", 5 * 4096}, {"pages-shmem.img", 4 * 4096}};
}

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/cryo-image-test-XXXXXX";
  CRYO_CHECK(mkdtemp(templ.data()) != nullptr);
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteSizedFile(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CRYO_CHECK(fd >= 0);
  CRYO_CHECK(::ftruncate(fd, static_cast<off_t>(size)) == 0);
  ::close(fd);
}

Result<std::string> MapSource::Read(std::string_view name) const {
  auto it = files_.find(std::string(name));
  if (it == files_.end()) return SysError(ENOENT, fmt::format("open {}", name));
  return it->second;
}

Result<uint64_t> MapSource::Size(std::string_view name) const {
  auto it = sizes_.find(std::string(name));
  if (it == sizes_.end()) return SysError(ENOENT, fmt::format("stat {}", name));
  return it->second;
}

}  // namespace cryo::image::testing
