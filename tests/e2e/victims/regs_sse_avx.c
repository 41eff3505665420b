// Register state across the checkpoint: known values live in ymm0-15, nine general-purpose
// registers, MXCSR (non-default rounding, FTZ, DAZ) and the x87 control word while the victim
// spins in an asm loop that touches none of them. The loop announces readiness and polls for "go"
// with raw syscalls (rename, access), which clobber only rax, rcx and r11. The values are loaded
// before the announcement, so a dump always sees them in the registers.
#include <cpuid.h>

#include "victim.h"

#define HIDDEN __attribute__((visibility("hidden")))

HIDDEN uint8_t e2e_ymm_in[16][32] __attribute__((aligned(32)));
HIDDEN uint8_t e2e_ymm_out[16][32] __attribute__((aligned(32)));
// rbx rdx r8 r9 r10 r12 r13 r14 r15: none of them is a syscall argument of the loop.
#define NGP 9
HIDDEN uint64_t e2e_gp_in[NGP];
HIDDEN uint64_t e2e_gp_out[NGP];
HIDDEN uint32_t e2e_mxcsr_in = 0x1f80 | 0x6000 | 0x8000 | 0x0040;  // round to zero, FTZ, DAZ
HIDDEN uint32_t e2e_mxcsr_out;
HIDDEN uint32_t e2e_mxcsr_default = 0x1f80;
HIDDEN uint16_t e2e_fcw_in = 0x0e7f;  // round to zero, 64-bit precision
HIDDEN uint16_t e2e_fcw_out;
HIDDEN uint16_t e2e_fcw_default = 0x037f;
HIDDEN uint64_t e2e_spin = 20000;  // pause instructions between two polls
HIDDEN char e2e_ready_tmp[PATH_MAX];
HIDDEN char e2e_ready[PATH_MAX];
HIDDEN char e2e_go[PATH_MAX];

static const char* const kGpNames[NGP] = {"rbx", "rdx", "r8",  "r9", "r10",
                                          "r12", "r13", "r14", "r15"};

static int have_avx(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if (!(c & bit_AVX) || !(c & bit_OSXSAVE)) return 0;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 6) == 6;  // the OS saves and restores xmm and ymm state
}

#define LOAD_YMM(n) "vmovdqa e2e_ymm_in+" #n "*32(%%rip), %%ymm" #n "\n\t"
#define STORE_YMM(n) "vmovdqa %%ymm" #n ", e2e_ymm_out+" #n "*32(%%rip)\n\t"

static void spin_with_live_registers(void) {
  __asm__ volatile(
      "ldmxcsr e2e_mxcsr_in(%%rip)\n\t"
      "fldcw e2e_fcw_in(%%rip)\n\t"
      LOAD_YMM(0) LOAD_YMM(1) LOAD_YMM(2) LOAD_YMM(3) LOAD_YMM(4) LOAD_YMM(5) LOAD_YMM(6)
      LOAD_YMM(7) LOAD_YMM(8) LOAD_YMM(9) LOAD_YMM(10) LOAD_YMM(11) LOAD_YMM(12) LOAD_YMM(13)
      LOAD_YMM(14) LOAD_YMM(15)
      "mov e2e_gp_in+0(%%rip), %%rbx\n\t"
      "mov e2e_gp_in+8(%%rip), %%rdx\n\t"
      "mov e2e_gp_in+16(%%rip), %%r8\n\t"
      "mov e2e_gp_in+24(%%rip), %%r9\n\t"
      "mov e2e_gp_in+32(%%rip), %%r10\n\t"
      "mov e2e_gp_in+40(%%rip), %%r12\n\t"
      "mov e2e_gp_in+48(%%rip), %%r13\n\t"
      "mov e2e_gp_in+56(%%rip), %%r14\n\t"
      "mov e2e_gp_in+64(%%rip), %%r15\n\t"
      // rename(ready.tmp, ready): the driver may dump us from here on.
      "mov $82, %%eax\n\t"
      "lea e2e_ready_tmp(%%rip), %%rdi\n\t"
      "lea e2e_ready(%%rip), %%rsi\n\t"
      "syscall\n\t"
      "1:\n\t"
      "mov e2e_spin(%%rip), %%rcx\n\t"
      "2:\n\t"
      "pause\n\t"
      "dec %%rcx\n\t"
      "jnz 2b\n\t"
      // access(go, F_OK)
      "mov $21, %%eax\n\t"
      "lea e2e_go(%%rip), %%rdi\n\t"
      "xor %%esi, %%esi\n\t"
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1b\n\t"
      STORE_YMM(0) STORE_YMM(1) STORE_YMM(2) STORE_YMM(3) STORE_YMM(4) STORE_YMM(5)
      STORE_YMM(6) STORE_YMM(7) STORE_YMM(8) STORE_YMM(9) STORE_YMM(10) STORE_YMM(11)
      STORE_YMM(12) STORE_YMM(13) STORE_YMM(14) STORE_YMM(15)
      "mov %%rbx, e2e_gp_out+0(%%rip)\n\t"
      "mov %%rdx, e2e_gp_out+8(%%rip)\n\t"
      "mov %%r8, e2e_gp_out+16(%%rip)\n\t"
      "mov %%r9, e2e_gp_out+24(%%rip)\n\t"
      "mov %%r10, e2e_gp_out+32(%%rip)\n\t"
      "mov %%r12, e2e_gp_out+40(%%rip)\n\t"
      "mov %%r13, e2e_gp_out+48(%%rip)\n\t"
      "mov %%r14, e2e_gp_out+56(%%rip)\n\t"
      "mov %%r15, e2e_gp_out+64(%%rip)\n\t"
      "stmxcsr e2e_mxcsr_out(%%rip)\n\t"
      "fnstcw e2e_fcw_out(%%rip)\n\t"
      "ldmxcsr e2e_mxcsr_default(%%rip)\n\t"
      "fldcw e2e_fcw_default(%%rip)\n\t"
      "vzeroupper\n\t"
      :
      :
      : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
        "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  if (!have_avx()) v_skip("the CPU or the kernel does not offer AVX");

  v_fill(e2e_ymm_in, sizeof e2e_ymm_in, 70);
  for (int i = 0; i < NGP; i++) e2e_gp_in[i] = v_word(71, (uint64_t)i);
  v_path(e2e_ready_tmp, "ready.tmp");
  v_path(e2e_ready, "ready");
  snprintf(e2e_go, sizeof e2e_go, "%s", v_go_path);
  v_write_ready_tmp();

  spin_with_live_registers();

  for (int r = 0; r < 16; r++) {
    for (int half = 0; half < 2; half++) {
      if (memcmp(e2e_ymm_in[r] + 16 * half, e2e_ymm_out[r] + 16 * half, 16) != 0)
        v_fail("ymm%d %s half differs", r, half ? "upper" : "lower (xmm)");
    }
  }
  for (int i = 0; i < NGP; i++) {
    if (e2e_gp_in[i] != e2e_gp_out[i])
      v_fail("%s is %#llx, expected %#llx", kGpNames[i], (unsigned long long)e2e_gp_out[i],
             (unsigned long long)e2e_gp_in[i]);
  }
  if (e2e_mxcsr_out != e2e_mxcsr_in)
    v_fail("MXCSR is %#x, expected %#x", e2e_mxcsr_out, e2e_mxcsr_in);
  if (e2e_fcw_out != e2e_fcw_in)
    v_fail("x87 control word is %#x, expected %#x", e2e_fcw_out, e2e_fcw_in);
  v_pass();
}
