// Host side of the restorer blob: the embedded image (blob_image.S) and the jump into it.
#include "restorer/blob.h"

#include <sys/rseq.h>

extern "C" const uint8_t cryo_restorer_blob_image[];
extern "C" const uint8_t cryo_restorer_blob_image_end[];

namespace cryo::restorer {

std::span<const uint8_t> BlobImage() {
  return {cryo_restorer_blob_image, cryo_restorer_blob_image_end};
}

RseqArea HostRseq() {
  if (__rseq_size == 0) return {};
  // glibc registers at least the original 32-byte struct rseq, and reports in __rseq_size the
  // size of the fields it uses (20 since glibc 2.40); the kernel wants the registered length.
  constexpr uint32_t kOrigRseqSize = 32;
  RseqArea area;
  area.addr = reinterpret_cast<uint64_t>(__builtin_thread_pointer()) + __rseq_offset;
  area.len = __rseq_size < kOrigRseqSize ? kOrigRseqSize : __rseq_size;
  area.sig = RSEQ_SIG;
  return area;
}

void JumpToBlob(uint64_t blob_entry, uint64_t arena, uint64_t stack_top) {
  // rdi is pinned to the arena; blob_entry and stack_top get other registers, so the moves
  // cannot clobber each other.
  asm volatile(
      "mov %0, %%rsp\n\t"
      "jmp *%1"
      :
      : "r"(stack_top), "r"(blob_entry), "D"(arena)
      : "memory");
  __builtin_unreachable();
}

}  // namespace cryo::restorer
