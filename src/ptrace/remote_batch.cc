#include "ptrace/remote_batch.h"

#include <signal.h>
#include <sys/uio.h>

#include <algorithm>

#include "base/io.h"
#include "base/log.h"
#include "proc/status.h"

namespace cryo::ptrace {
namespace {

// Bytes of code per call: seven movabs of 10 bytes (rax and the six argument registers),
// syscall (2), and the store of rax (10).
constexpr size_t kCallCode = 7 * 10 + 2 + 10;

size_t Align8(size_t n) { return (n + 7) & ~size_t{7}; }

void Imm64(std::vector<uint8_t>& code, uint64_t v) {
  for (int i = 0; i < 8; i++) code.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// SIGTRAP must be deliverable for the final int3 without the kernel resetting its action: not
// ignored (force_sig resets an ignored or blocked action to SIG_DFL), and none pending that would
// be taken for ours.
Result<bool> TrapUsable(pid_t pid, pid_t tid) {
  std::string text = CRYO_TRY(ReadWholeFile(fmt::format("/proc/{}/task/{}/status", pid, tid)));
  auto st = CRYO_TRY_CTX(proc::ParseStatus(text), "status of thread {}", tid);
  uint64_t bit = 1ull << (SIGTRAP - 1);
  return ((st.sig_ign | st.sig_pnd | st.shd_pnd) & bit) == 0;
}

}  // namespace

size_t RemoteBatch::Add(long nr, std::array<uint64_t, 6> args, uint32_t out_size, int out_arg) {
  Call c{.nr = nr, .args = args, .out_size = out_size, .out_arg = out_arg, .out_at = out_.size()};
  out_.resize(out_.size() + Align8(out_size));
  calls_.push_back(c);
  return calls_.size() - 1;
}

std::vector<uint8_t> RemoteBatch::Code(std::span<const Call> calls,
                                       std::span<const uint64_t> out_addrs, uint64_t results) {
  // movabs reg, imm64 for rax, rdi, rsi, rdx, r10, r8, r9 (the syscall ABI's registers).
  static constexpr uint8_t kMov[7][2] = {{0x48, 0xb8}, {0x48, 0xbf}, {0x48, 0xbe}, {0x48, 0xba},
                                         {0x49, 0xba}, {0x49, 0xb8}, {0x49, 0xb9}};
  std::vector<uint8_t> code;
  code.reserve(calls.size() * kCallCode + 1);
  for (size_t i = 0; i < calls.size(); i++) {
    const Call& c = calls[i];
    for (int r = 0; r < 7; r++) {
      uint64_t v = r == 0 ? static_cast<uint64_t>(c.nr) : c.args[r - 1];
      if (r > 0 && c.out_size > 0 && c.out_arg == r - 1) v = out_addrs[i];
      code.push_back(kMov[r][0]);
      code.push_back(kMov[r][1]);
      Imm64(code, v);
    }
    code.push_back(0x0f);  // syscall
    code.push_back(0x05);
    code.push_back(0x48);  // movabs [results + 8 i], rax
    code.push_back(0xa3);
    Imm64(code, results + 8 * i);
  }
  code.push_back(0xcc);  // int3
  return code;
}

Status RemoteBatch::Run(RemoteSyscalls& rs, const RemoteScratch& scratch, pid_t tid) {
  std::fill(out_.begin(), out_.end(), std::byte{0});
  ran_as_code_ = scratch.executable() && CRYO_TRY(TrapUsable(scratch.pid(), tid));
  if (ran_as_code_) return RunAsCode(rs, scratch);
  return RunOneByOne(rs, scratch);
}

// Runs the calls in chunks that fit the scratch: code at its start, then the chunk's results,
// then its output areas. One write and one read of the scratch per chunk.
Status RemoteBatch::RunAsCode(RemoteSyscalls& rs, const RemoteScratch& scratch) {
  const uint64_t base = scratch.addr().value();
  size_t i = 0;
  while (i < calls_.size()) {
    size_t n = 0, outs = 0;
    auto need = [&](size_t k, size_t o) { return Align8(k * kCallCode + 1) + 8 * k + o; };
    while (i + n < calls_.size() &&
           need(n + 1, outs + Align8(calls_[i + n].out_size)) <= scratch.size()) {
      outs += Align8(calls_[i + n].out_size);
      n++;
    }
    if (n == 0) {
      return MakeError(ErrorKind::kInternal, "remote call {} does not fit {} bytes of scratch",
                       calls_[i].nr, scratch.size());
    }
    std::span<const Call> chunk(calls_.data() + i, n);
    const size_t results_at = Align8(n * kCallCode + 1);
    const size_t outs_at = results_at + 8 * n;
    std::vector<uint64_t> out_addrs(n);
    for (size_t k = 0; k < n; k++) {
      out_addrs[k] = base + outs_at + (chunk[k].out_at - chunk[0].out_at);
    }
    std::vector<uint8_t> code = Code(chunk, out_addrs, base + results_at);
    code.resize(outs_at + outs, 0);  // results and output areas start zeroed
    CRYO_TRYV(scratch.Write(0, std::as_bytes(std::span(code))));
    CRYO_TRYV(rs.RunUntilTrap(RemoteAddr(base), RemoteAddr(base + n * kCallCode + 1)));
    std::vector<std::byte> back(8 * n + outs);
    CRYO_TRYV(scratch.Read(results_at, back));
    for (size_t k = 0; k < n; k++) {
      std::memcpy(&calls_[i + k].result, back.data() + 8 * k, 8);
    }
    std::memcpy(out_.data() + chunk[0].out_at, back.data() + 8 * n, outs);
    i += n;
  }
  return {};
}

Status RemoteBatch::RunOneByOne(RemoteSyscalls& rs, const RemoteScratch& scratch) {
  const uint64_t at = scratch.addr().value();
  for (Call& c : calls_) {
    if (c.out_size > scratch.size()) {
      return MakeError(ErrorKind::kInternal, "remote call {} does not fit {} bytes of scratch",
                       c.nr, scratch.size());
    }
    std::array<uint64_t, 6> a = c.args;
    if (c.out_size > 0) {
      a[c.out_arg] = at;
      std::vector<std::byte> zero(c.out_size);
      CRYO_TRYV(scratch.Write(0, zero));
    }
    c.result = CRYO_TRY(rs.Call(c.nr, a[0], a[1], a[2], a[3], a[4], a[5]));
    if (c.out_size > 0) {
      CRYO_TRYV(scratch.Read(0, std::span(out_.data() + c.out_at, c.out_size)));
    }
  }
  return {};
}

}  // namespace cryo::ptrace
