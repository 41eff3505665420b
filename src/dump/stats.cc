#include "dump/stats.h"

#include <sys/utsname.h>

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "base/io.h"

namespace cryo::dump {

image::Inventory MakeInventory(pid_t root) {
  image::Inventory inv;
  inv.root_pid = root;
  utsname u{};
  if (::uname(&u) == 0) inv.kernel_release = u.release;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  inv.created_ns = now.tv_sec * 1'000'000'000ll + now.tv_nsec;
  return inv;
}

Status WriteStats(const image::ImageDir& dir, const DumpStats& s) {
  nlohmann::json j = {
      {"frozen_seconds", s.frozen_seconds},
      {"total_seconds", s.total_seconds},
      {"phases",
       {{"capture_seconds", s.capture_seconds},
        {"memory_scan_seconds", s.memory_scan_seconds},
        {"memory_copy_seconds", s.memory_copy_seconds},
        {"write_seconds", s.write_seconds},
        {"shmem_copy_seconds", s.shmem_copy_seconds}}},
      {"pages_scanned", s.pages_scanned},
      {"pages_written", s.pages_written},
      {"pages_skipped", s.pages_skipped},
      {"pages_unchanged", s.pages_unchanged},
      {"pages_hot", s.pages_hot},
      {"pages_inherited", s.pages_inherited},
      {"pages_lazy", s.pages_lazy},
      {"shmem_objects", s.shmem_objects},
      {"shmem_bytes", s.shmem_bytes},
      {"pages_zero", s.pages_zero},
      {"bytes_written", s.bytes_written},
      {"bytes_content", s.bytes_content},
      {"compression", s.compression},
      {"compression_ratio",
       s.bytes_written ? double(s.bytes_content) / double(s.bytes_written) : 1.0},
  };
  // Whole or not at all: a post-copy dump's caller takes the file as the sign the image is done.
  std::string tmp = dir.path() + "/stats-dump.json.tmp";
  CRYO_TRYV(WriteWholeFile(tmp, j.dump(2) + "\n"));
  if (::rename(tmp.c_str(), (dir.path() + "/stats-dump.json").c_str()) < 0) {
    return ErrnoError("rename {}", tmp);
  }
  return {};
}

void AddMemoryStats(DumpStats& s, const MemoryStats& m) {
  s.memory_scan_seconds = m.scan_seconds;
  s.memory_copy_seconds = m.copy_seconds;
  s.pages_scanned = m.pages_scanned;
  s.pages_written = m.pages_written;
  s.pages_unchanged = m.pages_unchanged;
  s.pages_hot = m.pages_hot;
  s.pages_inherited = m.pages_inherited;
  s.pages_lazy = m.pages_lazy;
  s.pages_zero = m.pages_zero;
  s.pages_skipped =
      m.pages_scanned - m.pages_written - m.pages_unchanged - m.pages_inherited - m.pages_lazy;
  s.bytes_written = m.bytes_written;
  s.bytes_content = m.bytes_content;
  s.compression = image::CodecName(m.codec);
}

}  // namespace cryo::dump
