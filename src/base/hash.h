// FNV-1a, 64 bit: a small non-cryptographic fingerprint (e.g. of the vdso text).
#pragma once

#include <cstdint>
#include <span>

namespace cryo {

inline uint64_t Fnv1a64(std::span<const uint8_t> data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : data) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace cryo
