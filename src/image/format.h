// Constants of the on-disk image format shared by writer and reader: the file header layout,
// the kinds of metadata file, file names and size limits. Specified in docs/image-format.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace cryo::image {

// "CRYO" as bytes on disk, read as a little-endian u32.
inline constexpr uint32_t kMagic = 0x4f595243;
// The one version this cryo writes and reads. See the version history in the spec.
inline constexpr uint16_t kFormatVersion = 1;
inline constexpr size_t kHeaderSize = 24;
// Largest payload accepted; a valid pagemap of the most runs allowed fits.
inline constexpr uint32_t kMaxPayloadSize = 512u << 20;
// Most repeated elements (plus unknown fields) in one file, so that a small hostile payload
// cannot make the protobuf parser build an enormous number of objects.
inline constexpr uint64_t kMaxElementsPerFile = (1u << 24) + (1u << 20);
// Highest user-space address on x86-64 with 4-level paging; no vma or page run ends above.
inline constexpr uint64_t kTaskSize = 0x800000000000;
// Size of a raw siginfo_t, as stored for pending signals.
inline constexpr size_t kSigInfoSize = 128;

// What a metadata file holds; stored in the header as a u16.
enum class Kind : uint16_t {
  kInventory = 1,
  kPstree = 2,
  kCore = 3,
  kMm = 4,
  kPagemap = 5,
  kFds = 6,
  kShmem = 7,
};
inline constexpr uint16_t kMaxKind = 7;

// "inventory", "core", ...; "unknown" for a value outside the enum.
std::string_view KindName(Kind kind);

inline constexpr std::string_view kInventoryFile = "inventory.img";
inline constexpr std::string_view kPstreeFile = "pstree.img";
std::string CoreFileName(pid_t pid);     // core-<pid>.img
std::string MmFileName(pid_t pid);       // mm-<pid>.img
std::string FdsFileName(pid_t pid);      // fds-<pid>.img
std::string PagemapFileName(pid_t pid);  // pagemap-<pid>.img
// The tree's shared-memory objects (written only when there are some) and their pages.
inline constexpr std::string_view kShmemFile = "shmem.img";
inline constexpr std::string_view kShmemPagesFile = "pages-shmem.img";
// The name the memory layer gives a process's pages file (raw pages, no header).
std::string PagesFileName(pid_t pid);  // pages-<pid>.img
// True for names of raw pages files, which have no header.
bool IsPagesFileName(std::string_view name);

}  // namespace cryo::image
