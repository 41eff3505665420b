// `cryo check`: every kernel feature cryo uses, whether this kernel has it, and what degrades
// without it; as text lines or as one JSON object.
#pragma once

namespace cryo::cli {

// Probes the kernel (sys::Features()) and prints the report on stdout. Returns 0 when dump and
// restore can work (ptrace seize, process_vm_readv, clone3 set_tid, PR_SET_MM_MAP and
// ARCH_MAP_VDSO_64 all work), 1 otherwise.
int RunCheck(bool json);

}  // namespace cryo::cli
