#include "sys/kernel_features.h"

#include <sys/utsname.h>

#include <cstring>

#include "base/io.h"
#include "sys/probes.h"
#include "sys/vdso_layout.h"

namespace cryo::sys {

namespace probes {

Feature Ok(std::string detail) { return Feature{true, std::move(detail)}; }
Feature Missing(std::string detail) { return Feature{false, std::move(detail)}; }

std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  return fmt::format("{} ({})", name ? name : std::to_string(err).c_str(), strerror(err));
}

}  // namespace probes

namespace {

std::string Release() {
  utsname u{};
  if (uname(&u) != 0) return "?";
  return u.release;
}

VdsoLayout ReadOwnVdsoLayout() {
  auto maps = ReadWholeFile("/proc/self/maps");
  if (!maps) return VdsoLayout{.detail = maps.error().Message()};
  auto layout = ParseVdsoLayout(*maps);
  if (!layout) return VdsoLayout{.detail = layout.error().Message()};
  return *layout;
}

}  // namespace

KernelFeatures ProbeKernelFeatures() {
  KernelFeatures f;
  f.release = Release();
  f.vdso = ReadOwnVdsoLayout();
  probes::ProbeTracing(&f);
  probes::ProbeProcessAccess(&f);
  probes::ProbeClone3SetTid(&f);
  probes::ProbePrctlMmMap(&f);
  probes::ProbeArchMapVdso(&f);
  probes::ProbeUserfaultfd(&f);
  probes::ProbePagemapScan(&f);
  probes::ProbeUffdWpAsync(&f);
  probes::ProbeSoftDirty(&f);
  probes::ProbeZeroPage(&f);
  return f;
}

const KernelFeatures& Features() {
  static const KernelFeatures features = ProbeKernelFeatures();
  return features;
}

}  // namespace cryo::sys
