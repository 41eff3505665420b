// Copying pages out of a frozen process into a pages file, in large batches: process_vm_readv
// for readable ranges, /proc/PID/mem (which may read PROT_NONE areas) for the rest.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <span>

#include "base/error.h"
#include "mem/page_scan.h"

namespace cryo::mem {

struct CopySource {
  PageRange range;
  // process_vm_readv may read it: the mapping has PROT_READ, and the pages are not shared
  // copy-on-write (dump/dump_memory.cc, RouteSharedPages). Otherwise /proc/PID/mem is used.
  bool readable = true;
  uint64_t file_offset = 0;  // where its pages go in the output file
};

struct CopyStats {
  uint64_t bytes = 0;
  uint64_t vm_readv_calls = 0;
  uint64_t mem_reads = 0;
  uint64_t pages_gone = 0;  // running only: unreadable pages, stored as zeros
};

// Copies every source into `out_fd` at its file_offset. `mem_fd` is /proc/PID/mem, opened
// for reading. The process must be frozen, unless `running` (pre-dump): then pages it unmaps or
// drops during the copy are stored as zeros and counted in pages_gone, not an error.
Result<CopyStats> CopyPages(pid_t pid, int mem_fd, std::span<const CopySource> sources, int out_fd,
                            bool running = false);

// Receives copied content: bytes [offset, offset + data.size()) of the output. Called from the
// copy workers concurrently, each offset once.
using PageSink = std::function<Status(uint64_t offset, std::span<const std::byte> data)>;

// CopyPages with the content handed to `sink` instead of written to a file. Every call but the
// one that ends the output starts and ends at a multiple of `align` (a power of two, a page
// multiple), provided the sources' file offsets are consecutive from 0: then a sink can cut the
// output into blocks of `align` bytes and process them independently.
Result<CopyStats> CopyPagesTo(pid_t pid, int mem_fd, std::span<const CopySource> sources,
                              const PageSink& sink, uint64_t align, bool running = false);

}  // namespace cryo::mem
