// Host side of the restorer blob: its flat image, embedded at build time, and the jump into it.
// The blob's contract (Arena, Step, register conventions) is in restorer/abi.h.
#pragma once

#include <cstdint>
#include <span>

namespace cryo::restorer {

// The flat, position-independent blob: copy it to the start of the keep region and map it
// read+execute. Entry at offset 0; "syscall; int3" at kSyscallGadgetOffset. Checked at build
// time to need no relocation and to have no writable data.
std::span<const uint8_t> BlobImage();

// Size of the stack the host reserves for the blob inside the keep region.
inline constexpr uint64_t kBlobStackSize = 64 * 1024;

// The rseq registration of the calling thread, for Arena::host_rseq*. glibc registers one per
// thread in its TLS and fork/clone3 children inherit it; the blob must unregister it before it
// unmaps cryo. All zero if glibc did not register one.
struct RseqArea {
  uint64_t addr = 0;
  uint32_t len = 0;
  uint32_t sig = 0;
};
RseqArea HostRseq();

// Switches to the blob: rsp = stack_top, rdi = arena, jump to blob_entry (the address of the
// copied image). Preconditions: the image is mapped executable at blob_entry, the Arena is
// filled in, and every signal is blocked (a handler in cryo's code would run after the blob has
// unmapped it). Never returns: the blob ends in a ptrace stop (see docs/restore.md).
[[noreturn]] void JumpToBlob(uint64_t blob_entry, uint64_t arena, uint64_t stack_top);

}  // namespace cryo::restorer
