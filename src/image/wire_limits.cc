#include "image/wire_limits.h"

#include <array>
#include <cstdint>
#include <map>

#include "base/check.h"
#include "image/cryo.pb.h"
#include "image/format.h"

namespace cryo::image {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

constexpr int kMaxFieldNumber = 63;  // cryo.proto keeps field numbers below 64

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5
};

struct FieldRule {
  const FieldDescriptor* field = nullptr;  // nullptr: not in the schema
  uint32_t max_count = 0;
  uint32_t max_size = 0;
  WireType wire_type = kVarint;  // the unpacked wire type
};

using Rules = std::array<FieldRule, kMaxFieldNumber + 1>;

WireType UnpackedWireType(const FieldDescriptor& f) {
  switch (f.type()) {
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
      return kFixed64;
    case FieldDescriptor::TYPE_FLOAT:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
      return kFixed32;
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_BYTES:
    case FieldDescriptor::TYPE_MESSAGE:
      return kLengthDelimited;
    case FieldDescriptor::TYPE_GROUP:
      return kStartGroup;
    default:
      return kVarint;
  }
}

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
  Status Scan(std::string_view data, const Descriptor& type) {
    const Rules& rules = RulesFor(type);
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
      const FieldRule* rule = number <= kMaxFieldNumber ? &rules[number] : nullptr;
      bool packed = rule && rule->field && rule->field->is_repeated() &&
                    rule->wire_type != kLengthDelimited && wire == kLengthDelimited;
      if (!rule || !rule->field || (wire != rule->wire_type && !packed)) {
        // Unknown to this schema (or a type mismatch, which the parser also keeps as unknown).
        CRYO_TRYV(Spend(1));
        continue;
      }
      CRYO_TRYV(Check(*rule, type, wire, packed, value, seen[number]));
    }
    return {};
  }

 private:
  Status Check(const FieldRule& rule, const Descriptor& type, WireType wire, bool packed,
               std::string_view value, uint64_t& seen) {
    const FieldDescriptor& f = *rule.field;
    if (f.is_repeated()) {
      uint64_t n = 1;
      if (packed) {
        int64_t count = PackedCount(value, rule.wire_type);
        if (count < 0) return Malformed(type, fmt::format("{}: bad packed encoding", f.name()));
        n = static_cast<uint64_t>(count);
      }
      seen += n;
      if (seen > rule.max_count) {
        return MakeError(ErrorKind::kCorruptImage, "{}.{}: more than {} elements", type.name(),
                         f.name(), rule.max_count);
      }
      CRYO_TRYV(Spend(n));
    } else if (seen++ > 0) {
      return Malformed(type, fmt::format("{} given twice", f.name()));
    }
    if (wire != kLengthDelimited || packed) return {};
    if (f.type() == FieldDescriptor::TYPE_MESSAGE) {
      CRYO_TRYV(Scan(value, *f.message_type()));
    } else if (value.size() > rule.max_size) {
      return MakeError(ErrorKind::kCorruptImage, "{}.{}: {} bytes, at most {}", type.name(),
                       f.name(), value.size(), rule.max_size);
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

  static std::unexpected<Error> Malformed(const Descriptor& type, std::string_view what) {
    return MakeError(ErrorKind::kCorruptImage, "malformed {} message: {}", type.name(), what);
  }

  const Rules& RulesFor(const Descriptor& type) {
    // Repeated messages (thousands of page runs) ask for the same type again and again.
    if (&type == last_type_) return *last_rules_;
    auto [it, inserted] = rules_.try_emplace(&type);
    last_type_ = &type;
    last_rules_ = &it->second;  // map nodes stay put
    if (!inserted) return it->second;
    for (int i = 0; i < type.field_count(); ++i) {
      const FieldDescriptor* f = type.field(i);
      CRYO_CHECK(f->number() <= kMaxFieldNumber);
      FieldRule& r = it->second[f->number()];
      r.field = f;
      r.wire_type = UnpackedWireType(*f);
      r.max_count = f->options().GetExtension(pb::max_count);
      r.max_size = f->options().GetExtension(pb::max_size);
      CRYO_CHECK(!f->is_repeated() || r.max_count > 0);
      CRYO_CHECK(r.max_size > 0 || (f->type() != FieldDescriptor::TYPE_BYTES &&
                                    f->type() != FieldDescriptor::TYPE_STRING));
    }
    return it->second;
  }

  std::map<const Descriptor*, Rules> rules_;
  const Descriptor* last_type_ = nullptr;
  const Rules* last_rules_ = nullptr;
  uint64_t elements_ = 0;
};

}  // namespace

Status CheckWireLimits(std::string_view payload, const google::protobuf::Descriptor& type) {
  Scanner scanner;
  return scanner.Scan(payload, type);
}

}  // namespace cryo::image
