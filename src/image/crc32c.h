// CRC-32C (Castagnoli), the checksum over every metadata file's payload.
#pragma once

#include <cstdint>
#include <string_view>

namespace cryo::image {

// CRC-32C of `data` (reflected polynomial 0x82f63b78, initial and final xor 0xffffffff),
// the same value as the SSE4.2 crc32 instruction and iSCSI. Crc32c("123456789") == 0xe3069283.
uint32_t Crc32c(std::string_view data);

}  // namespace cryo::image
