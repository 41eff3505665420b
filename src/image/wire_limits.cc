#include "image/wire_limits.h"

#include <array>
#include <cstdint>
#include <typeinfo>

#include "image/cryo.pb.h"
#include "image/format.h"

namespace cryo::image {
namespace {

constexpr int kMaxFieldNumber = 63;  // cryo.proto keeps field numbers below 64

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5
};

// A field as the wire check needs it. `wire_type` is the unpacked one; `message` the index in
// kWireMessages of a message field's type, -1 for other fields.
struct WireField {
  const char* name;
  WireType wire_type;
  bool repeated;
  int message;
  uint32_t max_count;
  uint32_t max_size;
};

struct WireMessage {
  const char* name;
  const std::type_info* type;
  std::array<int16_t, kMaxFieldNumber + 1> fields;  // index in kWireFields by number, -1: none
};

// kWireFields and kWireMessages, generated from cryo.proto (wire_schema_gen.cc).
#include "image/wire_schema.inc"

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ == data_.size(); }

  bool ReadVarint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == data_.size()) return false;
      auto b = static_cast<unsigned char>(data_[pos_++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return true;
    }
    return false;  // more than 10 bytes
  }
  bool ReadSlice(uint64_t n, std::string_view& out) {
    if (n > data_.size() - pos_) return false;
    out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// Number of elements in a packed field's bytes, or -1 if they do not split evenly.
int64_t PackedCount(std::string_view bytes, WireType element_type) {
  switch (element_type) {
    case kFixed64:
      return bytes.size() % 8 ? -1 : int64_t(bytes.size() / 8);
    case kFixed32:
      return bytes.size() % 4 ? -1 : int64_t(bytes.size() / 4);
    default:
      break;
  }
  if (!bytes.empty() && (static_cast<unsigned char>(bytes.back()) & 0x80)) return -1;
  int64_t n = 0;
  for (char c : bytes) n += !(static_cast<unsigned char>(c) & 0x80);
  return n;
}

class Scanner {
 public:
  Status Scan(std::string_view data, const WireMessage& type) {
    std::array<uint64_t, kMaxFieldNumber + 1> seen{};
    Reader in(data);
    while (!in.done()) {
      uint64_t tag = 0;
      if (!in.ReadVarint(tag) || tag > UINT32_MAX || (tag >> 3) == 0) {
        return Malformed(type, "bad field tag");
      }
      uint64_t number = tag >> 3;
      auto wire = static_cast<WireType>(tag & 7);
      std::string_view value;
      uint64_t scratch = 0;
      switch (wire) {
        case kVarint:
          if (!in.ReadVarint(scratch)) return Malformed(type, "bad varint");
          break;
        case kFixed64:
          if (!in.ReadSlice(8, value)) return Malformed(type, "truncated fixed64");
          break;
        case kFixed32:
          if (!in.ReadSlice(4, value)) return Malformed(type, "truncated fixed32");
          break;
        case kLengthDelimited:
          if (!in.ReadVarint(scratch) || !in.ReadSlice(scratch, value)) {
            return Malformed(type, "length-delimited field runs past the end");
          }
          break;
        default:
          return Malformed(type, fmt::format("wire type {} is not used", int(wire)));
      }
      int index = number <= kMaxFieldNumber ? type.fields[number] : -1;
      const WireField* rule = index >= 0 ? &kWireFields[index] : nullptr;
      bool packed =
          rule && rule->repeated && rule->wire_type != kLengthDelimited && wire == kLengthDelimited;
      if (!rule || (wire != rule->wire_type && !packed)) {
        // Unknown to this schema (or a type mismatch, which the parser also keeps as unknown).
        CRYO_TRYV(Spend(1));
        continue;
      }
      CRYO_TRYV(Check(*rule, type, wire, packed, value, seen[number]));
    }
    return {};
  }

 private:
  Status Check(const WireField& f, const WireMessage& type, WireType wire, bool packed,
               std::string_view value, uint64_t& seen) {
    if (f.repeated) {
      uint64_t n = 1;
      if (packed) {
        int64_t count = PackedCount(value, f.wire_type);
        if (count < 0) return Malformed(type, fmt::format("{}: bad packed encoding", f.name));
        n = static_cast<uint64_t>(count);
      }
      seen += n;
      if (seen > f.max_count) {
        return MakeError(ErrorKind::kCorruptImage, "{}.{}: more than {} elements", type.name,
                         f.name, f.max_count);
      }
      CRYO_TRYV(Spend(n));
    } else if (seen++ > 0) {
      return Malformed(type, fmt::format("{} given twice", f.name));
    }
    if (wire != kLengthDelimited || packed) return {};
    if (f.message >= 0) {
      CRYO_TRYV(Scan(value, kWireMessages[f.message]));
    } else if (value.size() > f.max_size) {
      return MakeError(ErrorKind::kCorruptImage, "{}.{}: {} bytes, at most {}", type.name, f.name,
                       value.size(), f.max_size);
    }
    return {};
  }

  Status Spend(uint64_t n) {
    elements_ += n;
    if (elements_ > kMaxElementsPerFile) {
      return MakeError(ErrorKind::kCorruptImage, "more than {} elements in one file",
                       kMaxElementsPerFile);
    }
    return {};
  }

  static std::unexpected<Error> Malformed(const WireMessage& type, std::string_view what) {
    return MakeError(ErrorKind::kCorruptImage, "malformed {} message: {}", type.name, what);
  }

  uint64_t elements_ = 0;
};

}  // namespace

Status CheckWireLimits(std::string_view payload, const google::protobuf::Message& msg) {
  for (const WireMessage& m : kWireMessages) {
    if (*m.type == typeid(msg)) {
      Scanner scanner;
      return scanner.Scan(payload, m);
    }
  }
  return MakeError(ErrorKind::kInternal, "no wire rules for a {} message", typeid(msg).name());
}

}  // namespace cryo::image
