#include "cli/check.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sys/kernel_features.h"

namespace cryo::cli {
namespace {

// One line of the report.
struct CheckItem {
  const char* key;   // JSON key
  const char* name;  // as printed
  const sys::Feature* feature;
  bool required;        // dump or restore cannot work without it
  std::string without;  // what degrades when it is missing
};

std::vector<CheckItem> Items(const sys::KernelFeatures& f) {
  const char* soft_dirty_without = f.uffd_wp_async
                                       ? "not needed: dirty tracking uses uffd WP_ASYNC"
                                       : "no dirty tracking at all: pre-dump unavailable";
  return {
      {"ptrace_seize", "ptrace seize", &f.ptrace_seize, true,
       "dump impossible: processes cannot be frozen"},
      {"ptrace_rseq_config", "ptrace rseq config", &f.ptrace_rseq_config, false,
       "rseq registrations cannot be read: threads using rseq cannot be dumped"},
      {"process_vm_readv", "process_vm_readv", &f.process_vm_readv, true,
       "dump impossible: target memory cannot be read"},
      {"pidfd_open", "pidfd_open", &f.pidfd_open, false,
       "fds cannot be taken from the target (pidfd_getfd needs a pidfd)"},
      {"pidfd_getfd", "pidfd_getfd", &f.pidfd_getfd, false,
       "sockets, pipes and anon-inode fds cannot be dumped; no dirty tracking"},
      {"clone3_set_tid", "clone3 set_tid", &f.clone3_set_tid, true,
       "restore impossible: original pids cannot be recreated"},
      {"prctl_mm_map", "PR_SET_MM_MAP", &f.prctl_mm_map, true,
       "restore impossible: brk, args, env, auxv and exe link cannot be set"},
      {"arch_map_vdso", "ARCH_MAP_VDSO_64", &f.arch_map_vdso, true,
       "restore impossible: the vDSO cannot be placed where the image expects it"},
      {"userfaultfd", "userfaultfd", &f.userfaultfd_syscall, false,
       "lazy restore and dirty tracking unavailable"},
      {"userfaultfd_dev", "/dev/userfaultfd", &f.userfaultfd_dev, false,
       f.userfaultfd_syscall ? "not needed: the userfaultfd syscall works"
                             : "lazy restore and dirty tracking unavailable"},
      {"pagemap_scan", "PAGEMAP_SCAN", &f.pagemap_scan, false,
       "pre-dump unavailable, dump falls back to reading /proc/PID/pagemap"},
      {"uffd_wp_async", "uffd WP_ASYNC", &f.uffd_wp_async, false,
       f.soft_dirty ? "dirty tracking falls back to soft-dirty"
                    : "pre-dump unavailable: no dirty tracking"},
      {"soft_dirty", "soft-dirty", &f.soft_dirty, false, soft_dirty_without},
      {"zero_page", "zero page", &f.zero_page, false,
       "pages a process only read are dumped as pages of zeros: larger images"},
  };
}

bool DumpRestorePossible(const std::vector<CheckItem>& items) {
  for (const CheckItem& item : items) {
    if (item.required && !item.feature->ok) return false;
  }
  return true;
}

void PrintText(const sys::KernelFeatures& f, const std::vector<CheckItem>& items) {
  fmt::print("{:<20} {}\n", "kernel:", f.release);
  for (const CheckItem& item : items) {
    std::string label = fmt::format("{}:", item.name);
    if (item.feature->ok) {
      fmt::print("{:<20} ok{}{}\n", label, item.feature->detail.empty() ? "" : " — ",
                 item.feature->detail);
    } else {
      fmt::print("{:<20} missing — {}; probe: {}\n", label, item.without, item.feature->detail);
    }
  }
  fmt::print("{:<20} {:#x}\n", "uffd features:", f.uffd_features);
  fmt::print("{:<20} {}\n", "vdso layout:", f.vdso.found ? f.vdso.detail : "not found");
  std::vector<std::string> blocking;
  for (const CheckItem& item : items) {
    if (item.required && !item.feature->ok) blocking.emplace_back(item.name);
  }
  if (blocking.empty()) {
    fmt::print("{:<20} possible\n", "dump/restore:");
  } else {
    fmt::print("{:<20} NOT possible (missing: {})\n", "dump/restore:", fmt::join(blocking, ", "));
  }
}

void PrintJson(const sys::KernelFeatures& f, const std::vector<CheckItem>& items) {
  nlohmann::ordered_json features = nlohmann::ordered_json::object();
  for (const CheckItem& item : items) {
    nlohmann::ordered_json j = {{"name", item.name},
                                {"ok", item.feature->ok},
                                {"required", item.required},
                                {"detail", item.feature->detail}};
    if (!item.feature->ok) j["without"] = item.without;
    features[item.key] = std::move(j);
  }
  nlohmann::ordered_json out = {
      {"kernel", f.release},
      {"features", std::move(features)},
      {"uffd_features", f.uffd_features},
      {"uffd_ioctls", f.uffd_ioctls},
      {"prctl_mm_map_size", f.mm_map_size},
      {"vdso",
       {{"found", f.vdso.found},
        {"vvar_size", f.vdso.vvar_size},
        {"vvar_offset", f.vdso.vvar_offset},
        {"vvar_vclock_size", f.vdso.vvar_vclock_size},
        {"vvar_vclock_offset", f.vdso.vvar_vclock_offset},
        {"vdso_size", f.vdso.vdso_size},
        {"vdso_offset", f.vdso.vdso_offset}}},
      {"dump_restore_possible", DumpRestorePossible(items)},
  };
  fmt::print("{}\n", out.dump(2));
}

}  // namespace

int RunCheck(bool json) {
  const sys::KernelFeatures& f = sys::Features();
  std::vector<CheckItem> items = Items(f);
  if (json) {
    PrintJson(f, items);
  } else {
    PrintText(f, items);
  }
  return DumpRestorePossible(items) ? 0 : 1;
}

}  // namespace cryo::cli
