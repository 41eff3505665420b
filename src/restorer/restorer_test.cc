// Runs the real restorer blob in a ptraced child: the child builds a keep region and an Arena the
// way restore does, jumps, and the parent checks the stop registers and the child's visible state
// (/proc, process_vm_readv, remote syscalls through the blob's gadget).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "base/check.h"
#include "restorer/abi.h"
#include "restorer/blob.h"

namespace cryo::restorer {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kTaskSize = 0x7ffffffff000;  // 4-level paging

// Final addresses of the two moved areas and of the vdso: far from where mmap puts the keep
// region (top-down from the stack), and all outside it, which the blob checks.
constexpr uint64_t kVma0 = 0x200000000, kVma0Pages = 16;
constexpr uint64_t kVma1 = 0x200100000, kVma1Pages = 2;
constexpr uint64_t kVdso = 0x200200000;
// Places inside vma0 for per-task pointers and for remote syscall results.
constexpr uint64_t kAltstack = kVma0 + 2 * kPage, kAltstackSize = 4 * kPage;
constexpr uint64_t kRseqArea = kVma0 + 10 * kPage;  // 32 zero bytes; the kernel writes cpu ids
constexpr uint64_t kRobustHead = kVma0 + 11 * kPage;
constexpr uint64_t kTidAddress = kVma0 + 11 * kPage + 64;
constexpr uint64_t kScratch = kVma0 + 12 * kPage;  // remote syscalls write here

// Arguments and environment of the "restored" process, placed at the start of vma0.
constexpr char kCmdline[] = "restored\0--flag";  // with the final NUL: two strings
constexpr char kEnviron[] = "CRYO=1";

uint8_t Pattern(int vma, uint64_t offset) {
  return static_cast<uint8_t>(offset * 131 + vma * 17 + (offset >> 12));
}

// What each final area must hold after the restore.
std::vector<uint8_t> ExpectedContent(int vma) {
  const uint64_t pages = vma == 0 ? kVma0Pages : kVma1Pages;
  std::vector<uint8_t> bytes(pages * kPage);
  for (uint64_t i = 0; i < bytes.size(); ++i) bytes[i] = Pattern(vma, i);
  if (vma == 0) {
    std::memcpy(bytes.data(), kCmdline, sizeof kCmdline);
    std::memcpy(bytes.data() + sizeof kCmdline, kEnviron, sizeof kEnviron);
    std::memset(bytes.data() + (kRseqArea - kVma0), 0, 32);
  }
  return bytes;
}

std::vector<uint8_t> ExpectedPrefix(int vma, uint64_t len) {
  std::vector<uint8_t> bytes = ExpectedContent(vma);
  bytes.resize(len);
  return bytes;
}

struct CredSpec {
  uint32_t uids[4], gids[4];
  std::vector<uint32_t> groups;
  uint64_t inh, prm, eff, bnd, amb;
};

// What the child puts in its Arena; the defaults make a valid restore with the child's own
// credentials.
struct Scenario {
  bool bad_magic = false;
  int unmapped_premap = -1;  // this VmaMove's premap is unmapped before the jump
  int move_into_keep = -1;   // this VmaMove's final address lies in the keep region
  std::optional<CredSpec> creds;
  bool altstack = false;             // an enabled altstack at kAltstack, else SS_DISABLE
  bool thread_outside_keep = false;  // one ThreadSpec whose stack lies above the keep region
};

uint32_t CapLast() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  uint32_t last = 40;
  in >> last;
  return last;
}

CredSpec OwnCreds() {
  CredSpec c{};
  CRYO_CHECK(getresuid(&c.uids[0], &c.uids[1], &c.uids[2]) == 0);
  CRYO_CHECK(getresgid(&c.gids[0], &c.gids[1], &c.gids[2]) == 0);
  c.uids[3] = static_cast<uint32_t>(setfsuid(-1));
  c.gids[3] = static_cast<uint32_t>(setfsgid(-1));
  c.groups.resize(getgroups(0, nullptr));
  CRYO_CHECK(getgroups(c.groups.size(), c.groups.data()) == static_cast<int>(c.groups.size()));
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2];
  CRYO_CHECK(syscall(SYS_capget, &header, data) == 0);
  c.eff = data[0].effective | uint64_t{data[1].effective} << 32;
  c.prm = data[0].permitted | uint64_t{data[1].permitted} << 32;
  c.inh = data[0].inheritable | uint64_t{data[1].inheritable} << 32;
  c.bnd = c.amb = 0;
  for (uint32_t cap = 0; cap <= CapLast(); ++cap) {
    if (prctl(PR_CAPBSET_READ, cap) == 1) c.bnd |= 1ull << cap;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) c.amb |= 1ull << cap;
  }
  return c;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Lays out an Arena and its arrays in a buffer, the way restore fills the keep region.
class ArenaWriter {
 public:
  explicit ArenaWriter(std::span<uint8_t> mem) : mem_(mem) {
    CRYO_CHECK(mem.size() >= sizeof(Arena));
    new (mem.data()) Arena{};
    used_ = sizeof(Arena);
    arena().arena_size = static_cast<uint32_t>(used_);
  }
  Arena& arena() { return *reinterpret_cast<Arena*>(mem_.data()); }

  template <typename T>
  uint32_t Append(std::span<const T> items) {
    used_ = (used_ + alignof(T) - 1) / alignof(T) * alignof(T);
    const uint64_t offset = used_;
    CRYO_CHECK(offset + items.size_bytes() <= mem_.size());
    std::memcpy(mem_.data() + offset, items.data(), items.size_bytes());
    used_ += items.size_bytes();
    arena().arena_size = static_cast<uint32_t>(used_);
    return static_cast<uint32_t>(offset);
  }

 private:
  std::span<uint8_t> mem_;
  uint64_t used_;
};

// The keep region: [blob][arena: 2 pages][stack][premap0][hole page][premap1].
struct KeepLayout {
  uint64_t start, blob_len, arena, stack_top, premap[2], end;
  explicit KeepLayout(uint64_t base) : start(base) {
    blob_len = (BlobImage().size() + kPage - 1) / kPage * kPage;
    arena = start + blob_len;
    stack_top = arena + 2 * kPage + kBlobStackSize;
    premap[0] = stack_top;
    premap[1] = premap[0] + (kVma0Pages + 1) * kPage;
    end = premap[1] + kVma1Pages * kPage;
  }
  uint64_t size() const { return end - start; }
};

void FillArena(ArenaWriter& w, const KeepLayout& keep, const Scenario& s, int exe_fd,
               std::span<const int32_t> close_fds) {
  Arena& a = w.arena();
  a.magic = s.bad_magic ? 0x1234 : kArenaMagic;
  a.abi_version = kAbiVersion;
  a.keep_start = keep.start;
  a.keep_end = keep.end;
  a.task_size = kTaskSize;
  a.vdso_vvar_start = kVdso;

  VmaMove moves[2] = {
      {keep.premap[0], kVma0, kVma0Pages * kPage, PROT_READ | PROT_WRITE, kMadvDontFork},
      {keep.premap[1], kVma1, kVma1Pages * kPage, PROT_READ, kMadvDontDump | kMadvLocked},
  };
  if (s.move_into_keep >= 0) moves[s.move_into_keep].start = keep.premap[0];
  a.vma_count = 2;
  a.vma_offset = w.Append<VmaMove>(moves);

  // mm fields: made-up but valid values inside the moved areas, so /proc shows they were set.
  a.start_code = kVma1;
  a.end_code = kVma1 + kVma1Pages * kPage;
  a.start_data = kVma0 + 8 * kPage;
  a.end_data = kVma0 + 9 * kPage;
  a.start_brk = a.brk = kVma0 + kVma0Pages * kPage;
  a.start_stack = kVma0 + 9 * kPage;
  a.arg_start = kVma0;
  a.arg_end = kVma0 + sizeof kCmdline;
  a.env_start = a.arg_end;
  a.env_end = a.env_start + sizeof kEnviron;
  // Our own auxv with AT_ENTRY changed, to see that the new one was installed.
  std::string raw = ReadFile("/proc/self/auxv");
  std::vector<uint64_t> auxv(raw.size() / 8);
  std::memcpy(auxv.data(), raw.data(), auxv.size() * 8);
  for (size_t i = 0; i + 1 < auxv.size(); i += 2) {
    if (auxv[i] == AT_ENTRY) auxv[i + 1] = kVma1;
  }
  a.auxv_words = static_cast<uint32_t>(auxv.size());
  a.auxv_offset = w.Append<uint64_t>(auxv);
  a.exe_fd = exe_fd;

  a.rlimit_count = RLIM_NLIMITS;
  for (int i = 0; i < RLIM_NLIMITS; ++i) {
    rlimit rl;
    CRYO_CHECK(getrlimit(static_cast<__rlimit_resource>(i), &rl) == 0);
    a.rlimits[i] = {rl.rlim_cur, rl.rlim_max};
  }
  a.rlimits[RLIMIT_NOFILE].cur = std::min<uint64_t>(200, a.rlimits[RLIMIT_NOFILE].max);

  a.altstack_sp = s.altstack ? kAltstack : 0;
  a.altstack_size = s.altstack ? kAltstackSize : 0;
  a.altstack_flags = s.altstack ? 0 : SS_DISABLE;

  const RseqArea host = HostRseq();
  a.host_rseq = host.addr;
  a.host_rseq_len = host.len;
  a.host_rseq_sig = host.sig;
  a.rseq = kRseqArea;
  a.rseq_len = 32;
  a.rseq_sig = RSEQ_SIG;
  a.robust_list = kRobustHead;
  a.robust_list_len = 24;
  a.clear_child_tid = kTidAddress;

  const CredSpec c = s.creds ? *s.creds : OwnCreds();
  std::copy(std::begin(c.uids), std::end(c.uids), a.uids);
  std::copy(std::begin(c.gids), std::end(c.gids), a.gids);
  a.group_count = static_cast<uint32_t>(c.groups.size());
  a.groups_offset = w.Append<uint32_t>(c.groups);
  a.cap_inh = c.inh;
  a.cap_prm = c.prm;
  a.cap_eff = c.eff;
  a.cap_bnd = c.bnd;
  a.cap_amb = c.amb;
  a.cap_last = CapLast();

  std::strncpy(a.comm, "restored", sizeof a.comm);
  a.close_fd_count = static_cast<uint32_t>(close_fds.size());
  a.close_fds_offset = w.Append<int32_t>(close_fds);
  if (s.thread_outside_keep) {
    ThreadSpec t{};
    t.tid = 4242;
    t.stack_top = keep.end + kThreadStackSize;
    const ThreadSpec threads[] = {t};
    a.thread_count = 1;
    a.threads_offset = w.Append<ThreadSpec>(threads);
  }
}

// Child side: everything restore's per-process setup does before the jump. Never returns.
[[noreturn]] void BuildAndJump(uint64_t keep_base, const Scenario& s, int close_fd) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, nullptr);

  const KeepLayout keep(keep_base);
  void* mem = mmap(reinterpret_cast<void*>(keep.start), keep.size(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CRYO_CHECK(mem == reinterpret_cast<void*>(keep.start));
  std::memcpy(mem, BlobImage().data(), BlobImage().size());
  CRYO_CHECK(mprotect(mem, keep.blob_len, PROT_READ | PROT_EXEC) == 0);
  for (int v = 0; v < 2; ++v) {
    std::vector<uint8_t> content = ExpectedContent(v);
    std::memcpy(reinterpret_cast<void*>(keep.premap[v]), content.data(), content.size());
  }
  if (s.unmapped_premap >= 0) {
    const uint64_t pages = s.unmapped_premap == 0 ? kVma0Pages : kVma1Pages;
    CRYO_CHECK(munmap(reinterpret_cast<void*>(keep.premap[s.unmapped_premap]), pages * kPage) == 0);
  }

  const int exe_fd = open("/bin/true", O_RDONLY);
  CRYO_CHECK(exe_fd >= 0);
  const int32_t close_fds[] = {close_fd};
  ArenaWriter writer({reinterpret_cast<uint8_t*>(keep.arena), 2 * kPage});
  FillArena(writer, keep, s, exe_fd, close_fds);
  JumpToBlob(keep.start, keep.arena, keep.stack_top);
}

// The ptraced child running one Scenario. The destructor kills and reaps it.
class BlobChild {
 public:
  explicit BlobChild(const Scenario& s) {
    // Pick the keep region's address here, so that the parent knows it too.
    void* probe =
        mmap(nullptr, KeepLayout(0).size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CRYO_CHECK(probe != MAP_FAILED);
    keep_ = KeepLayout(reinterpret_cast<uint64_t>(probe));
    munmap(probe, keep_.size());

    int go[2];
    CRYO_CHECK(pipe(go) == 0);
    pid_ = fork();
    CRYO_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      close(go[1]);
      char c;
      if (read(go[0], &c, 1) != 1) _exit(1);
      BuildAndJump(keep_.start, s, go[0]);  // the blob closes go[0]
    }
    close(go[0]);
    CRYO_CHECK(ptrace(PTRACE_SEIZE, pid_, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) == 0);
    CRYO_CHECK(write(go[1], "g", 1) == 1);
    close(go[1]);
    pipe_fd_ = go[0];
  }
  ~BlobChild() {
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) == pid_ && !WIFEXITED(status) && !WIFSIGNALED(status)) {
    }
  }
  BlobChild(const BlobChild&) = delete;
  BlobChild& operator=(const BlobChild&) = delete;

  pid_t pid() const { return pid_; }
  const KeepLayout& keep() const { return keep_; }
  int pipe_fd() const { return pipe_fd_; }
  std::string proc(const std::string& file) const {
    return "/proc/" + std::to_string(pid_) + "/" + file;
  }

  // Waits for the next stop; returns the registers at a SIGTRAP stop, nullopt (with a test
  // failure) on anything else.
  std::optional<user_regs_struct> WaitTrap(int want_sig = SIGTRAP) {
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) {
      ADD_FAILURE() << "waitpid: " << strerror(errno);
      return std::nullopt;
    }
    if (!WIFSTOPPED(status)) {
      ADD_FAILURE() << "child ended, status " << std::hex << status;
      return std::nullopt;
    }
    user_regs_struct regs;
    CRYO_CHECK(ptrace(PTRACE_GETREGS, pid_, 0, &regs) == 0);
    if (WSTOPSIG(status) != want_sig) {
      ADD_FAILURE() << "stopped by signal " << WSTOPSIG(status) << " at rip " << std::hex
                    << regs.rip;
      return std::nullopt;
    }
    return regs;
  }

  // Runs one system call in the child through the blob's "syscall; int3" gadget.
  long RemoteSyscall(user_regs_struct regs, long nr, uint64_t a1 = 0, uint64_t a2 = 0) {
    regs.rip = keep_.start + kSyscallGadgetOffset;
    regs.rax = nr;
    regs.rdi = a1;
    regs.rsi = a2;
    CRYO_CHECK(ptrace(PTRACE_SETREGS, pid_, 0, &regs) == 0);
    CRYO_CHECK(ptrace(PTRACE_CONT, pid_, 0, 0) == 0);
    auto after = WaitTrap();
    return after ? static_cast<long>(after->rax) : -1;
  }

  std::vector<uint8_t> ReadMemory(uint64_t addr, uint64_t len) {
    std::vector<uint8_t> bytes(len);
    iovec local{bytes.data(), len}, remote{reinterpret_cast<void*>(addr), len};
    ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
    if (n != static_cast<ssize_t>(len)) bytes.clear();
    return bytes;
  }

 private:
  pid_t pid_ = -1;
  KeepLayout keep_{0};
  int pipe_fd_ = -1;
};

struct MapsLine {
  uint64_t start, end;
  std::string perms, name;
};

std::vector<MapsLine> ParseMaps(const std::string& text) {
  std::vector<MapsLine> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    MapsLine m;
    std::istringstream ls(line);
    std::string range, offset, dev, inode;
    ls >> range >> m.perms >> offset >> dev >> inode;
    std::getline(ls >> std::ws, m.name);
    m.start = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    m.end = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    lines.push_back(m);
  }
  return lines;
}

const MapsLine* FindMapping(const std::vector<MapsLine>& maps, uint64_t start) {
  for (const MapsLine& m : maps) {
    if (m.start == start) return &m;
  }
  return nullptr;
}

// The VmFlags line of the smaps entry starting at `start`.
std::string VmFlags(const std::string& smaps, uint64_t start) {
  std::ostringstream key;
  key << std::hex << start << "-";
  size_t at = smaps.find("\n" + key.str());
  if (smaps.compare(0, key.str().size(), key.str()) == 0) at = 0;
  if (at == std::string::npos) return "";
  size_t flags = smaps.find("VmFlags:", at);
  return smaps.substr(flags, smaps.find('\n', flags) - flags) + " ";
}

std::vector<std::string> StatFields(const std::string& stat) {
  // Fields after "(comm)" start at field 3.
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::vector<std::string> fields = {"", "", ""};
  std::string f;
  while (in >> f) fields.push_back(f);
  return fields;
}

std::string StatusLine(const std::string& status, const std::string& key) {
  size_t at = status.find("\n" + key + ":");
  if (at == std::string::npos) return "";
  at += key.size() + 2;
  std::string value = status.substr(at, status.find('\n', at) - at);
  value.erase(0, value.find_first_not_of(" \t"));
  value.erase(value.find_last_not_of(" \t") + 1);
  return value;
}

std::string CapHex(uint64_t caps) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(caps));
  return buf;
}

std::string Describe(const user_regs_struct& r) {
  std::ostringstream out;
  out << "step " << r.rdi << " err " << static_cast<long>(r.rsi) << " index " << r.rdx << " detail "
      << r.rcx;
  return out.str();
}

// The blob's PR_SET_MM_MAP, exe change and credential steps need root's capabilities.
class Restorer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (PR_SET_MM_MAP, credentials)";
  }
};

TEST(BlobImage, HasEntryJumpAndSyscallGadget) {
  std::span<const uint8_t> image = BlobImage();
  ASSERT_GT(image.size(), kSyscallGadgetOffset + 3);
  EXPECT_TRUE(image[0] == 0xeb || image[0] == 0xe9) << "offset 0 must be a jmp";
  EXPECT_EQ(image[kSyscallGadgetOffset], 0x0f);
  EXPECT_EQ(image[kSyscallGadgetOffset + 1], 0x05);
  EXPECT_EQ(image[kSyscallGadgetOffset + 2], 0xcc);
}

TEST_F(Restorer, MovesMemoryMapsVdsoAndSetsProcessState) {
  BlobChild child(Scenario{});
  auto regs = child.WaitTrap();
  ASSERT_TRUE(regs);
  ASSERT_EQ(regs->rdi, kDone) << Describe(*regs);

  // Memory: content moved intact, final protections and madvise bits applied.
  EXPECT_EQ(child.ReadMemory(kVma0, kRseqArea - kVma0), ExpectedPrefix(0, kRseqArea - kVma0));
  EXPECT_EQ(child.ReadMemory(kVma1, kVma1Pages * kPage), ExpectedContent(1));
  const auto maps = ParseMaps(ReadFile(child.proc("maps")));
  const MapsLine* vma0 = FindMapping(maps, kVma0);
  const MapsLine* vma1 = FindMapping(maps, kVma1);
  ASSERT_TRUE(vma0 && vma1);
  EXPECT_EQ(vma0->end, kVma0 + kVma0Pages * kPage);
  EXPECT_EQ(vma0->perms, "rw-p");
  EXPECT_EQ(vma1->end, kVma1 + kVma1Pages * kPage);
  EXPECT_EQ(vma1->perms, "r--p");
  const std::string smaps = ReadFile(child.proc("smaps"));
  EXPECT_NE(VmFlags(smaps, kVma0).find(" dc "), std::string::npos) << VmFlags(smaps, kVma0);
  EXPECT_NE(VmFlags(smaps, kVma1).find(" dd "), std::string::npos) << VmFlags(smaps, kVma1);
  EXPECT_NE(VmFlags(smaps, kVma1).find(" lo "), std::string::npos) << VmFlags(smaps, kVma1);

  // The vdso block starts where asked; nothing of cryo is left outside the keep region.
  const MapsLine* vvar = FindMapping(maps, kVdso);
  ASSERT_TRUE(vvar) << ReadFile(child.proc("maps"));
  EXPECT_EQ(vvar->name, "[vvar]");
  bool have_vdso = false;
  for (const MapsLine& m : maps) {
    const bool in_keep = m.start >= child.keep().start && m.end <= child.keep().end;
    const bool ours = m.start == kVma0 || m.start == kVma1 || m.name.starts_with("[v");
    EXPECT_TRUE(in_keep || ours) << "left over: " << std::hex << m.start << " " << m.name;
    if (m.name == "[vdso]") have_vdso = m.start > kVdso && m.start < kVdso + 16 * kPage;
  }
  EXPECT_TRUE(have_vdso) << ReadFile(child.proc("maps"));

  // mm fields, auxv, exe link.
  const auto stat = StatFields(ReadFile(child.proc("stat")));
  ASSERT_GE(stat.size(), 52u);
  EXPECT_EQ(std::stoull(stat[26]), kVma1);              // startcode
  EXPECT_EQ(std::stoull(stat[45]), kVma0 + 8 * kPage);  // start_data
  EXPECT_EQ(std::stoull(stat[48]), kVma0);              // arg_start
  EXPECT_EQ(ReadFile(child.proc("cmdline")), std::string(kCmdline, sizeof kCmdline));
  EXPECT_EQ(ReadFile(child.proc("environ")), std::string(kEnviron, sizeof kEnviron));
  const std::string auxv = ReadFile(child.proc("auxv"));
  bool entry_seen = false;
  for (size_t i = 0; i + 16 <= auxv.size(); i += 16) {
    uint64_t kv[2];
    std::memcpy(kv, auxv.data() + i, 16);
    if (kv[0] == AT_ENTRY) entry_seen = kv[1] == kVma1;
  }
  EXPECT_TRUE(entry_seen);
  char exe[256] = {}, want_exe[256] = {};
  ASSERT_GT(readlink(child.proc("exe").c_str(), exe, sizeof exe - 1), 0);
  ASSERT_NE(realpath("/bin/true", want_exe), nullptr);
  EXPECT_STREQ(exe, want_exe);

  // Limits, comm, closed fds.
  rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  EXPECT_NE(ReadFile(child.proc("limits"))
                .find("Max open files            " +
                      std::to_string(std::min<uint64_t>(200, nofile.rlim_max))),
            std::string::npos);
  EXPECT_EQ(ReadFile(child.proc("comm")), "restored\n");
  EXPECT_NE(access(child.proc("fd/" + std::to_string(child.pipe_fd())).c_str(), F_OK), 0);

  // Per-task pointers: rseq and robust list seen from outside, the rest by remote syscalls.
  struct {
    uint64_t pointer;
    uint32_t size, signature, flags, pad;
  } rseq_conf{};
  ASSERT_EQ(ptrace(static_cast<__ptrace_request>(0x420f /* PTRACE_GET_RSEQ_CONFIGURATION */),
                   child.pid(), sizeof rseq_conf, &rseq_conf),
            static_cast<long>(sizeof rseq_conf));
  EXPECT_EQ(rseq_conf.pointer, kRseqArea);
  EXPECT_EQ(rseq_conf.signature, RSEQ_SIG);
  void* robust_head = nullptr;
  size_t robust_len = 0;
  ASSERT_EQ(syscall(SYS_get_robust_list, child.pid(), &robust_head, &robust_len), 0);
  EXPECT_EQ(reinterpret_cast<uint64_t>(robust_head), kRobustHead);
  EXPECT_EQ(robust_len, 24u);

  ASSERT_EQ(child.RemoteSyscall(*regs, SYS_prctl, PR_GET_TID_ADDRESS, kScratch), 0);
  const auto tid_address = child.ReadMemory(kScratch, 8);
  ASSERT_EQ(tid_address.size(), 8u);
  uint64_t tid_ptr;
  std::memcpy(&tid_ptr, tid_address.data(), 8);
  EXPECT_EQ(tid_ptr, kTidAddress);
  ASSERT_EQ(child.RemoteSyscall(*regs, SYS_sigaltstack, 0, kScratch), 0);
  stack_t ss;
  auto ss_bytes = child.ReadMemory(kScratch, sizeof ss);
  ASSERT_EQ(ss_bytes.size(), sizeof ss);
  std::memcpy(&ss, ss_bytes.data(), sizeof ss);
  EXPECT_EQ(ss.ss_flags, SS_DISABLE);

  // The host's last act: unmap the keep region from the gadget. The int3 after the syscall is
  // gone with it, so stop at the syscall exit instead.
  regs->rip = child.keep().start + kSyscallGadgetOffset;
  regs->rax = SYS_munmap;
  regs->rdi = child.keep().start;
  regs->rsi = child.keep().size();
  ASSERT_EQ(ptrace(PTRACE_SETREGS, child.pid(), 0, &*regs), 0);
  ASSERT_EQ(ptrace(PTRACE_SYSCALL, child.pid(), 0, 0), 0);
  ASSERT_TRUE(child.WaitTrap(SIGTRAP | 0x80));  // syscall entry
  ASSERT_EQ(ptrace(PTRACE_SYSCALL, child.pid(), 0, 0), 0);
  auto exit_regs = child.WaitTrap(SIGTRAP | 0x80);
  ASSERT_TRUE(exit_regs);
  EXPECT_EQ(exit_regs->rax, 0u);
  const auto final_maps = ParseMaps(ReadFile(child.proc("maps")));
  std::vector<uint64_t> starts;
  for (const MapsLine& m : final_maps) {
    if (m.name != "[vsyscall]") starts.push_back(m.start);
  }
  EXPECT_EQ(starts.size(), 5u) << ReadFile(child.proc("maps"));
  EXPECT_TRUE(std::ranges::includes(starts, std::vector<uint64_t>{kVma0, kVma1, kVdso}));
}

TEST_F(Restorer, SetsNonRootCredentialsAndAltstack) {
  constexpr uint64_t kKill = 1ull << CAP_KILL, kBind = 1ull << CAP_NET_BIND_SERVICE;
  Scenario s;
  s.altstack = true;
  s.creds = CredSpec{{1000, 1001, 1002, 1003},
                     {2000, 2001, 2002, 2003},
                     {3000, 3001},
                     /*inh=*/kBind,
                     /*prm=*/kKill | kBind,
                     /*eff=*/kKill,
                     /*bnd=*/kKill | kBind | (1ull << CAP_CHOWN),
                     /*amb=*/kBind};
  BlobChild child(s);
  auto regs = child.WaitTrap();
  ASSERT_TRUE(regs);
  ASSERT_EQ(regs->rdi, kDone) << Describe(*regs);

  const std::string status = ReadFile(child.proc("status"));
  EXPECT_EQ(StatusLine(status, "Uid"), "1000\t1001\t1002\t1003");
  EXPECT_EQ(StatusLine(status, "Gid"), "2000\t2001\t2002\t2003");
  EXPECT_EQ(StatusLine(status, "Groups"), "3000 3001");
  EXPECT_EQ(StatusLine(status, "CapInh"), CapHex(kBind));
  EXPECT_EQ(StatusLine(status, "CapPrm"), CapHex(kKill | kBind));
  EXPECT_EQ(StatusLine(status, "CapEff"), CapHex(kKill));
  EXPECT_EQ(StatusLine(status, "CapBnd"), CapHex(kKill | kBind | (1ull << CAP_CHOWN)));
  EXPECT_EQ(StatusLine(status, "CapAmb"), CapHex(kBind));
  EXPECT_EQ(ReadFile(child.proc("comm")), "restored\n");

  ASSERT_EQ(child.RemoteSyscall(*regs, SYS_sigaltstack, 0, kScratch), 0);
  stack_t ss;
  auto ss_bytes = child.ReadMemory(kScratch, sizeof ss);
  ASSERT_EQ(ss_bytes.size(), sizeof ss);
  std::memcpy(&ss, ss_bytes.data(), sizeof ss);
  EXPECT_EQ(reinterpret_cast<uint64_t>(ss.ss_sp), kAltstack);
  EXPECT_EQ(ss.ss_size, kAltstackSize);
  EXPECT_EQ(ss.ss_flags, 0);
  EXPECT_EQ(child.RemoteSyscall(*regs, SYS_prctl, PR_GET_DUMPABLE), 1);
}

TEST_F(Restorer, UnmappedPremapStopsAtMremapWithIndex) {
  Scenario s;
  s.unmapped_premap = 1;
  BlobChild child(s);
  auto regs = child.WaitTrap();
  ASSERT_TRUE(regs);
  EXPECT_EQ(regs->rdi, kMremap) << Describe(*regs);
  EXPECT_EQ(regs->rdx, 1u);
  const long err = static_cast<long>(regs->rsi);
  EXPECT_TRUE(err == -EFAULT || err == -EINVAL) << err;
  // The first move was done before the failure.
  EXPECT_EQ(child.ReadMemory(kVma0, kPage), ExpectedPrefix(0, kPage));
}

TEST_F(Restorer, BadMagicStopsBeforeChangingAnything) {
  Scenario s;
  s.bad_magic = true;
  BlobChild child(s);
  auto regs = child.WaitTrap();
  ASSERT_TRUE(regs);
  EXPECT_EQ(regs->rdi, kBadArena) << Describe(*regs);
  EXPECT_EQ(regs->rdx, kCheckMagic);
  char self[256] = {};
  ASSERT_GT(readlink("/proc/self/exe", self, sizeof self - 1), 0);
  EXPECT_NE(ReadFile(child.proc("maps")).find(self), std::string::npos)
      << "cryo's mappings must still be there";
}

TEST_F(Restorer, MoveIntoKeepRegionIsRefused) {
  Scenario s;
  s.move_into_keep = 1;
  BlobChild child(s);
  auto regs = child.WaitTrap();
  ASSERT_TRUE(regs);
  EXPECT_EQ(regs->rdi, kBadArena) << Describe(*regs);
  EXPECT_EQ(regs->rdx, kCheckVma);
  EXPECT_EQ(regs->rcx, 1u);
}

TEST_F(Restorer, ThreadStackOutsideKeepRegionIsRefused) {
  Scenario s;
  s.thread_outside_keep = true;
  BlobChild child(s);
  auto regs = child.WaitTrap();
  ASSERT_TRUE(regs);
  EXPECT_EQ(regs->rdi, kBadArena) << Describe(*regs);
  EXPECT_EQ(regs->rdx, kCheckThread);
  EXPECT_EQ(regs->rcx, 0u);
}

}  // namespace
}  // namespace cryo::restorer
