// Where the kernel put the vDSO and its data pages ([vvar], [vvar_vclock], [vdso]) in a process,
// read from the text of its /proc/PID/maps. Restore compares this with the image's layout.
#pragma once

#include <string_view>

#include "base/error.h"
#include "sys/kernel_features.h"

namespace cryo::sys {

// Finds the three areas in maps text. `base` (out, optional) gets the absolute start of the lowest
// one. kInternal when there is no [vdso] or a line naming one of them is malformed.
Result<VdsoLayout> ParseVdsoLayout(std::string_view maps_text, uint64_t* base = nullptr);

}  // namespace cryo::sys
