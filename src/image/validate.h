// Semantic checks of decoded image data: the invariants restore relies on, so that a hostile or
// damaged image gets an error, never a crash. Errors (kCorruptImage) do not name the file.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "model/process.h"

namespace cryo::image {

// pstree.img: at least one process; pids > 0 and ppid, pgid, sid >= 0; every process has
// threads, the first being the leader (tid == pid); no tid appears twice in the tree; every
// process but the root has its parent earlier in the list (so the tree has no cycles).
Status ValidatePstree(const model::ProcessTree& tree);

// core-<pid>.img: umask <= 0777, exactly kNumRlimits rlimits and kNumSignals sigactions,
// at least one thread, every tid > 0.
Status ValidateCore(const model::Process& p);

// mm-<pid>.img: every vma page-aligned with start < end <= kTaskSize, page-aligned pgoff,
// known prot and flag bits; vmas sorted by start and not overlapping.
Status ValidateMm(const model::Process& p);

// fds-<pid>.img: fd numbers >= 0, strictly increasing.
Status ValidateFds(const model::Process& p);

// An FD_INET fd: known protocol, state and option bits, ports and window scales in range, TCP
// repair state only on an established TCP connection, a lock table name cryo could have made.
// Other fds: no inet state. (validate_inet.cc)
Status ValidateInetFd(const model::Fd& f);
// Across the processes of the tree: every fd with a shared_file id (at most kMaxSharedFiles) is
// no dup, of a kind restore can create in the cryo parent, and the same kind (and pipe or
// socket) as every other fd with that id.
Status ValidateSharedFiles(const model::ProcessTree& tree);
inline constexpr uint32_t kMaxSharedFiles = 1u << 24;

// Across the processes of the tree: a process with INHERITED page runs is not the root, its parent
// is a live process of the tree, and each such run lies in a vma that can inherit from one of the
// parent's (model::InheritSource).
Status ValidateInheritedPages(const model::ProcessTree& tree);

// A pages file name: non-empty, no '/', no "..", no NUL.
Status ValidatePagesFileName(std::string_view name);

// pagemap-<pid>.img, against p.vmas (already validated): runs page-aligned, nr_pages > 0, sorted,
// not overlapping, each inside one private vma (anon or file) without overflow; flags known, at
// most one of PRESENT/ZERO/IN_PARENT/INHERITED, ZERO and INHERITED alone, not empty; PRESENT runs
// have a page-aligned offset with offset + length <= pages_size (the pages file's size; unused if
// no run is PRESENT).
Status ValidatePagemap(const model::Process& p, uint64_t pages_size);

// True if some run of p.pagemap has its content in the pages file.
bool NeedsPagesFile(const model::Process& p);

}  // namespace cryo::image
