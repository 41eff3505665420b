#include "ptrace/remote_batch.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "ptrace/freezer.h"
#include "sys/kernel_abi.h"

namespace cryo::ptrace {
namespace {

// A child that runs `setup`, then sleeps 300 ms in one nanosleep and reports the sleep's result
// and length, and whether SIGTRAP's action and its signal mask are what setup left.
struct Child {
  pid_t pid = -1;
  int report_fd = -1;
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (report_fd >= 0) ::close(report_fd);
  }
};

struct Report {
  long rc = -99, ms = 0;
  long trap_handler = -1;  // SIGTRAP's handler after the sleep
  long mask_same = 0;      // the signal mask is the one from before the sleep
};

void StartChild(Child& c, const std::function<void()>& setup) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  c.pid = ::fork();
  ASSERT_GE(c.pid, 0);
  if (c.pid == 0) {
    ::close(fds[0]);
    setup();
    sigset_t before{}, after{};
    ::sigprocmask(SIG_BLOCK, nullptr, &before);
    timespec t0{}, t1{};
    ::clock_gettime(CLOCK_MONOTONIC, &t0);
    timespec req{0, 300'000'000};
    Report r;
    r.rc = ::syscall(SYS_nanosleep, &req, nullptr);
    ::clock_gettime(CLOCK_MONOTONIC, &t1);
    r.ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    struct sigaction sa {};
    ::sigaction(SIGTRAP, nullptr, &sa);
    r.trap_handler = reinterpret_cast<long>(sa.sa_handler);
    ::sigprocmask(SIG_BLOCK, nullptr, &after);
    r.mask_same = ::memcmp(&before, &after, sizeof before) == 0;
    (void)!::write(fds[1], &r, sizeof r);
    ::_exit(0);
  }
  ::close(fds[1]);
  c.report_fd = fds[0];
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it enter nanosleep
}

Report Finish(Child& c) {
  Report r;
  EXPECT_EQ(::read(c.report_fd, &r, sizeof r), static_cast<ssize_t>(sizeof r));
  int status = 0;
  EXPECT_EQ(::waitpid(c.pid, &status, 0), c.pid);
  c.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return r;
}

void Handler(int) {}

// Runs in the frozen child: getpid, a failing close, SIGUSR1's sigaction (the child installed
// Handler), RLIMIT_NOFILE, then `extra` getppid calls. Checks every result.
void RunBatch(Child& c, bool exec, bool expect_code, uint64_t scratch_size, int extra) {
  auto frozen = Freezer::FreezeProcess(c.pid);
  ASSERT_TRUE(frozen) << frozen.error().Message();
  auto gadget = FindSyscallGadget(c.pid);
  ASSERT_TRUE(gadget) << gadget.error().Message();
  auto rs = RemoteSyscalls::Start(frozen->threads()[0], *gadget);
  ASSERT_TRUE(rs) << rs.error().Message();
  {
    auto scratch = RemoteScratch::Map(*rs, c.pid, scratch_size, exec);
    ASSERT_TRUE(scratch) << scratch.error().Message();
    RemoteBatch b;
    size_t pid = b.Add(SYS_getpid, {});
    size_t bad = b.Add(SYS_close, {~0ull});
    size_t act = b.Add(SYS_rt_sigaction, {SIGUSR1, 0, 0, 8}, sizeof(sys::KernelSigaction), 2);
    size_t lim = b.Add(SYS_prlimit64, {0, RLIMIT_NOFILE}, 16, 3);
    std::vector<size_t> ppids;
    for (int i = 0; i < extra; i++) ppids.push_back(b.Add(SYS_getppid, {}));
    auto run = b.Run(*rs, *scratch, c.pid);
    ASSERT_TRUE(run) << run.error().Message();
    EXPECT_EQ(b.ran_as_code(), expect_code);
    EXPECT_EQ(b.Result(pid), c.pid);
    EXPECT_EQ(b.Result(bad), -EBADF);
    EXPECT_EQ(b.Result(act), 0);
    EXPECT_EQ(b.Out<sys::KernelSigaction>(act).handler, reinterpret_cast<uint64_t>(&Handler));
    rlimit mine{};
    ::getrlimit(RLIMIT_NOFILE, &mine);  // the child inherited ours
    EXPECT_EQ(b.Result(lim), 0);
    EXPECT_EQ((b.Out<std::array<uint64_t, 2>>(lim)[1]), mine.rlim_max);
    for (size_t i : ppids) ASSERT_EQ(b.Result(i), ::getpid());
  }
  ASSERT_TRUE(rs->Finish());
  ASSERT_TRUE(frozen->Release());
}

void ExpectUndisturbed(const Report& r, long trap_handler) {
  EXPECT_EQ(r.rc, 0) << "nanosleep must restart, not fail with EINTR";
  EXPECT_GE(r.ms, 290) << "the sleep must not be cut short";
  EXPECT_EQ(r.trap_handler, trap_handler) << "SIGTRAP's action must be left alone";
  EXPECT_TRUE(r.mask_same) << "the signal mask must be restored";
}

TEST(RemoteBatch, RunsAllCallsInOneGoAndLeavesTheThreadAsItWas) {
  Child c;
  StartChild(c, [] { ::signal(SIGUSR1, Handler); });
  RunBatch(c, /*exec=*/true, /*expect_code=*/true, 16 << 10, 3);
  ExpectUndisturbed(Finish(c), reinterpret_cast<long>(SIG_DFL));
}

TEST(RemoteBatch, RunsInChunksWhenTheCodeDoesNotFitTheScratch) {
  Child c;
  StartChild(c, [] { ::signal(SIGUSR1, Handler); });
  RunBatch(c, true, true, 4096, 300);  // 304 calls of 82 bytes: several chunks
  ExpectUndisturbed(Finish(c), reinterpret_cast<long>(SIG_DFL));
}

TEST(RemoteBatch, CallsOneByOneWhenSigtrapIsIgnored) {
  Child c;
  StartChild(c, [] {
    ::signal(SIGUSR1, Handler);
    ::signal(SIGTRAP, SIG_IGN);  // an int3 would reset it to SIG_DFL
  });
  RunBatch(c, true, false, 16 << 10, 3);
  ExpectUndisturbed(Finish(c), reinterpret_cast<long>(SIG_IGN));
}

TEST(RemoteBatch, RunsAsCodeWhenTheThreadBlocksSigtrap) {
  Child c;
  StartChild(c, [] {
    ::signal(SIGUSR1, Handler);
    ::sigset_t trap;
    ::sigemptyset(&trap);
    ::sigaddset(&trap, SIGTRAP);
    ::sigprocmask(SIG_BLOCK, &trap, nullptr);  // opened for the int3 only, then blocked again
  });
  RunBatch(c, true, true, 16 << 10, 3);
  ExpectUndisturbed(Finish(c), reinterpret_cast<long>(SIG_DFL));
}

TEST(RemoteBatch, CallsOneByOneWhenTheScratchIsNotExecutable) {
  Child c;
  StartChild(c, [] { ::signal(SIGUSR1, Handler); });
  RunBatch(c, /*exec=*/false, false, 16 << 10, 3);
  ExpectUndisturbed(Finish(c), reinterpret_cast<long>(SIG_DFL));
}

TEST(RemoteBatch, MemoryDenyWriteExecuteFallsBackToOneByOne) {
  constexpr int kSetMdwe = 65, kRefuseExecGain = 1;  // PR_SET_MDWE (Linux 6.3)
  if (::prctl(kSetMdwe + 1, 0, 0, 0, 0) < 0 && errno == EINVAL) {
    GTEST_SKIP() << "PR_GET_MDWE not supported by this kernel";
  }
  Child c;
  StartChild(c, [] {
    ::signal(SIGUSR1, Handler);
    if (::prctl(kSetMdwe, kRefuseExecGain, 0, 0, 0) != 0) ::_exit(3);
  });
  RunBatch(c, /*exec=*/true, /*expect_code=*/false, 16 << 10, 3);
  ExpectUndisturbed(Finish(c), reinterpret_cast<long>(SIG_DFL));
}

TEST(RemoteBatch, CodeLoadsTheSyscallRegistersAndStoresTheResult) {
  RemoteBatch::Call c{.nr = 0x27, .args = {1, 2, 3, 4, 5, 6}, .out_size = 8, .out_arg = 1};
  uint64_t out = 0x7000'0000'1000ull;
  auto code = RemoteBatch::Code(std::span(&c, 1), std::span(&out, 1), 0x7000'0000'2000ull);
  ASSERT_EQ(code.size(), 83u);
  auto imm = [&](size_t at) {
    uint64_t v = 0;
    std::memcpy(&v, code.data() + at, 8);
    return v;
  };
  // movabs rax, rdi, rsi (the output address), rdx, r10, r8, r9; syscall; movabs [res], rax.
  EXPECT_EQ(code[0], 0x48);
  EXPECT_EQ(code[1], 0xb8);
  EXPECT_EQ(imm(2), 0x27u);
  EXPECT_EQ(code[11], 0xbf);
  EXPECT_EQ(imm(12), 1u);
  EXPECT_EQ(code[21], 0xbe);
  EXPECT_EQ(imm(22), out);
  EXPECT_EQ(code[40], 0x49);
  EXPECT_EQ(code[41], 0xba);
  EXPECT_EQ(imm(42), 4u);
  EXPECT_EQ(code[70], 0x0f);
  EXPECT_EQ(code[71], 0x05);
  EXPECT_EQ(code[72], 0x48);
  EXPECT_EQ(code[73], 0xa3);
  EXPECT_EQ(imm(74), 0x7000'0000'2000ull);
  EXPECT_EQ(code[82], 0xcc);
}

}  // namespace
}  // namespace cryo::ptrace
