// Probes of what restore needs: clone3 with set_tid, PR_SET_MM_MAP and ARCH_MAP_VDSO_64. The
// last two change the mm of the process that calls them, so they run in forked children.
#include <asm/prctl.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "base/io.h"
#include "sys/compat_uapi.h"
#include "sys/forked_child.h"
#include "sys/probes.h"
#include "sys/syscalls.h"
#include "sys/vdso_layout.h"

namespace cryo::sys::probes {
namespace {

using std::chrono_literals::operator""ms;
constexpr auto kChildTimeout = 2000ms;

// How many free pids at the top of the range clone3 may try before giving up (others may be
// taking pids concurrently; EEXIST just moves on to the next).
constexpr int kPidCandidates = 16;

bool HasCapability(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
  if (syscall(SYS_capget, &hdr, data.data()) != 0) return false;
  return (data[static_cast<size_t>(cap) / 32].effective >> (cap % 32)) & 1;
}

// Fields n (1-based, as in proc(5)) of /proc/self/stat that PR_SET_MM_MAP takes. (The full
// parser lives in proc/, which this layer may not use; the fields after comm are plain numbers.)
bool ReadMmFields(prctl_mm_map* map) {
  auto text = ReadWholeFile("/proc/self/stat");
  if (!text) return false;
  size_t close = text->rfind(')');
  if (close == std::string::npos) return false;
  std::array<uint64_t, 53> field{};
  size_t n = 3;  // the first field after comm
  const char* p = text->data() + close + 1;
  const char* end = text->data() + text->size();
  while (p < end && n < field.size()) {
    while (p < end && (*p == ' ' || *p == '\n')) ++p;
    const char* tok = p;
    while (p < end && *p != ' ' && *p != '\n') ++p;
    if (tok == p) break;
    std::from_chars(tok, p, field[n]);  // the state letter stays 0
    ++n;
  }
  if (n < 52) return false;
  map->start_code = field[26];
  map->end_code = field[27];
  map->start_stack = field[28];
  map->start_data = field[45];
  map->end_data = field[46];
  map->start_brk = field[47];
  map->arg_start = field[48];
  map->arg_end = field[49];
  map->env_start = field[50];
  map->env_end = field[51];
  return true;
}

// Exit codes of the ARCH_MAP_VDSO_64 child: 0 works, 1..199 the errno of arch_prctl, or these.
constexpr int kVdsoUnmapFailed = 200;
constexpr int kVdsoNotMapped = 201;

}  // namespace

void ProbeClone3SetTid(KernelFeatures* f) {
  auto text = ReadWholeFile("/proc/sys/kernel/pid_max");
  int pid_max = 0;
  if (!text ||
      std::from_chars(text->data(), text->data() + text->size(), pid_max).ec != std::errc()) {
    f->clone3_set_tid = Missing("cannot read /proc/sys/kernel/pid_max");
    return;
  }
  // Pids near pid_max are rarely in use; a taken one gives EEXIST and we try the next.
  int tried = 0;
  for (pid_t want = pid_max - 1; want > 300 && tried < kPidCandidates; --want) {
    if (access(fmt::format("/proc/{}", want).c_str(), F_OK) == 0) continue;
    ++tried;
    auto pid = Clone3WithTid(want, 0);
    if (pid && *pid == 0) _exit(0);  // the child: raw exit only (see Clone3WithTids)
    if (!pid && pid.error().sys_errno() == EEXIST) continue;
    if (!pid) {
      f->clone3_set_tid = Missing(pid.error().Message());
      return;
    }
    int status = 0;
    while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (*pid != want) {
      f->clone3_set_tid = Missing(fmt::format("asked for pid {}, got {}", want, *pid));
    } else {
      f->clone3_set_tid = Ok(fmt::format("child got pid {}", want));
    }
    return;
  }
  f->clone3_set_tid = Missing("no free pid found to try");
}

void ProbePrctlMmMap(KernelFeatures* f) {
  unsigned size = 0;
  if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) != 0) {
    f->prctl_mm_map = Missing("PR_SET_MM_MAP_SIZE: " + ErrnoText(errno));
    return;
  }
  f->mm_map_size = size;
  if (size != sizeof(prctl_mm_map)) {
    f->prctl_mm_map =
        Missing(fmt::format("kernel expects {} bytes, we have {}", size, sizeof(prctl_mm_map)));
    return;
  }
  // PR_SET_MM_MAP_SIZE only reports the size. To know the call itself is allowed, a child sets
  // its own current layout (inherited from us, so the values are its own).
  prctl_mm_map map{};
  if (!ReadMmFields(&map)) {
    f->prctl_mm_map = Missing("cannot read /proc/self/stat");
    return;
  }
  map.exe_fd = static_cast<uint32_t>(-1);  // keep /proc/self/exe
  auto code = RunInChild(
      [&map] {
        map.brk = static_cast<uint64_t>(syscall(SYS_brk, 0));
        if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0) != 0) return errno;
        return 0;
      },
      kChildTimeout);
  if (!code) {
    f->prctl_mm_map = Missing(code.error().Message());
  } else if (*code != 0) {
    f->prctl_mm_map = Missing("PR_SET_MM_MAP: " + ErrnoText(*code));
  } else if (!HasCapability(CAP_CHECKPOINT_RESTORE) && !HasCapability(CAP_SYS_ADMIN)) {
    // Without one of these the exe link (exe_fd) cannot be restored.
    f->prctl_mm_map = Missing("no CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN for exe_fd");
  } else {
    f->prctl_mm_map = Ok(fmt::format("a child set its own layout ({}-byte struct)", size));
  }
}

void ProbeArchMapVdso(KernelFeatures* f) {
  auto maps = ReadWholeFile("/proc/self/maps");
  if (!maps) {
    f->arch_map_vdso = Missing(maps.error().Message());
    return;
  }
  uint64_t base = 0;
  auto layout = ParseVdsoLayout(*maps, &base);
  if (!layout) {
    f->arch_map_vdso = Missing(layout.error().Message());
    return;
  }
  // The kernel refuses a second vDSO (EEXIST), so the child first unmaps all three areas, then
  // asks for a new one at the same place and looks for it in its maps. Nothing in the child may
  // use the vDSO (clock_gettime, ...) in between. The read buffer is allocated before fork.
  std::string buf(maps->size() * 2 + 65536, '\0');
  const VdsoLayout l = *layout;
  auto code = RunInChild(
      [&buf, &l, base] {
        const std::array<std::pair<uint64_t, uint64_t>, 3> areas = {{
            {l.vvar_offset, l.vvar_size},
            {l.vvar_vclock_offset, l.vvar_vclock_size},
            {l.vdso_offset, l.vdso_size},
        }};
        for (auto [offset, size] : areas) {
          if (size != 0 && munmap(reinterpret_cast<void*>(base + offset), size) != 0) {
            return kVdsoUnmapFailed;
          }
        }
        if (syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, base) < 0) return errno;
        int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return kVdsoNotMapped;
        size_t len = 0;
        for (ssize_t n; (n = read(fd, buf.data() + len, buf.size() - len)) > 0;) {
          len += static_cast<size_t>(n);
        }
        close(fd);
        return std::string_view(buf.data(), len).find("[vdso]") != std::string_view::npos
                   ? 0
                   : kVdsoNotMapped;
      },
      kChildTimeout);
  if (!code) {
    f->arch_map_vdso = Missing(code.error().Message());
  } else if (*code == kVdsoUnmapFailed) {
    f->arch_map_vdso = Missing("could not unmap the vDSO in the probe child");
  } else if (*code == kVdsoNotMapped) {
    f->arch_map_vdso = Missing("no [vdso] after ARCH_MAP_VDSO_64");
  } else if (*code != 0) {
    f->arch_map_vdso = Missing("ARCH_MAP_VDSO_64: " + ErrnoText(*code));
  } else {
    f->arch_map_vdso = Ok("a child re-created its vDSO");
  }
}

}  // namespace cryo::sys::probes
