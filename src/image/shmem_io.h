// shmem.img: the shared-memory objects of a tree (model/shmem.h), each stored once, and the
// rules that tie them to the mappings and fds that name them. Specified in
// docs/image-format.md (§4.7, §8).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "model/process.h"

namespace cryo::image {

// Largest object accepted: the user address space (an object larger than that cannot be mapped
// whole, and sizes near 2^64 would overflow offset arithmetic).
inline constexpr uint64_t kMaxShmemSize = 0x800000000000;
// memfd names are at most 249 bytes (MFD_NAME_MAX_LEN).
inline constexpr size_t kMaxMemfdName = 249;
// Seals F_ADD_SEALS knows: SEAL, SHRINK, GROW, WRITE, FUTURE_WRITE, EXEC.
inline constexpr uint32_t kKnownSeals = 0x3f;

Result<std::string> EncodeShmem(const model::ShmemTable& t);
Result<model::ShmemTable> DecodeShmem(std::string_view file);

// The objects alone (kCorruptImage, naming the object): ids > 0 and unique, known kind and flag
// bits, size <= kMaxShmemSize (System V: > 0, id >= 0), mode <= 0777, seals only on memfds and
// known, memfd names <= 249 bytes without NUL, tmpfs names absolute paths without NUL; runs
// page-aligned, nr_pages > 0, sorted, not overlapping, inside the object (page-rounded size) and
// inside the pages file of `pages_size` bytes; a plain pages file name if any run exists.
Status ValidateShmem(const model::ShmemTable& t, uint64_t pages_size);

// Every Vma::shmem_id and Fd::shmem_id of the tree names an object of `tree.shmem` of a kind
// that fits: VMA_ANON_SHARED ⇄ anon, VMA_SYSV_SHM ⇄ System V (both must name one),
// file mappings and FD_SHMEM ⇄ memfd or tmpfs (FD_SHMEM must name one); a mapping of an anon or
// System V object lies inside the object (pgoff + length <= page-rounded size), any mapping's
// pgoff + length <= kMaxShmemSize.
Status ValidateShmemRefs(const model::ProcessTree& tree);

}  // namespace cryo::image
