// The source side of post-copy (`cryo dump --lazy-pages --port P`, docs/page-server.md): once
// the image is written, the frozen processes' lazy pages are served to one `cryo lazy-pages
// --page-server` until it says every page was delivered.
#pragma once

#include <sys/types.h>

#include <map>
#include <vector>

#include "base/error.h"
#include "mem/page_scan.h"

namespace cryo::dump {

struct ServeStats {
  uint64_t requests = 0;
  uint64_t bytes = 0;
  double seconds = 0;  // from the connection to DONE
};

// Accepts one connection on `listener` and answers its GETs from /proc/PID/mem of the (frozen)
// processes, each only for the ranges `lazy` lists for that pid. Returns at DONE; a request for
// anything else, a broken connection or a malformed frame is an error (`stats` then says how
// much was served before).
Status ServeLazyPages(int listener, const std::map<pid_t, std::vector<mem::PageRange>>& lazy,
                      ServeStats& stats);
// The same on a connection made already (cryo migrate).
Status ServeLazyPagesOn(int conn, const std::map<pid_t, std::vector<mem::PageRange>>& lazy,
                        ServeStats& stats);

}  // namespace cryo::dump
