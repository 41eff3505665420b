// What a dump or pre-dump reports: the inventory it writes and stats-dump.json.
#pragma once

#include <sys/types.h>

#include "base/error.h"
#include "dump/dump.h"
#include "dump/dump_memory.h"
#include "image/image_dir.h"
#include "image/inventory.h"

namespace cryo::dump {

// The inventory of a dump of `root` made now on this kernel.
image::Inventory MakeInventory(pid_t root);
// stats-dump.json in `dir`.
Status WriteStats(const image::ImageDir& dir, const DumpStats& s);
// Copies the memory phase's numbers into `s`.
void AddMemoryStats(DumpStats& s, const MemoryStats& m);

}  // namespace cryo::dump
