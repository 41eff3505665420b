// CHECK: aborts with file:line when one of our own invariants is broken. Never for kernel or
// image data; those get an Error.
#pragma once

#include <cstdio>
#include <cstdlib>

#define CRYO_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "cryo: CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
