#include "image/proto_json.h"

#include <fmt/format.h>

#include "image/cryo.pb.h"

namespace cryo::image {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Length of the valid UTF-8 sequence at the start of `s`, or 0 if it does not start with one.
size_t Utf8SequenceLength(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xc0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
    if (c == 0xed && b(1) >= 0xa0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xf4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

std::string Hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  constexpr std::string_view kDigits = "0123456789abcdef";
  for (char c : bytes) {
    auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

nlohmann::json Value(const Message& msg, const FieldDescriptor& f, int index) {
  const Reflection& r = *msg.GetReflection();
  bool rep = f.is_repeated();
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r.GetRepeatedInt32(msg, &f, index) : r.GetInt32(msg, &f);
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r.GetRepeatedInt64(msg, &f, index) : r.GetInt64(msg, &f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r.GetRepeatedUInt32(msg, &f, index) : r.GetUInt32(msg, &f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r.GetRepeatedUInt64(msg, &f, index) : r.GetUInt64(msg, &f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r.GetRepeatedDouble(msg, &f, index) : r.GetDouble(msg, &f);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r.GetRepeatedFloat(msg, &f, index) : r.GetFloat(msg, &f);
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r.GetRepeatedBool(msg, &f, index) : r.GetBool(msg, &f);
    case FieldDescriptor::CPPTYPE_ENUM: {
      int v = rep ? r.GetRepeatedEnumValue(msg, &f, index) : r.GetEnumValue(msg, &f);
      const auto* e = f.enum_type()->FindValueByNumber(v);
      return e ? nlohmann::json(e->name()) : nlohmann::json(v);
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = rep ? r.GetRepeatedStringReference(msg, &f, index, &scratch)
                                 : r.GetStringReference(msg, &f, &scratch);
      return f.options().GetExtension(pb::hex) ? Hex(s) : PrintableText(s);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageToJson(rep ? r.GetRepeatedMessage(msg, &f, index) : r.GetMessage(msg, &f));
  }
  return nullptr;
}

}  // namespace

std::string PrintableText(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  while (!bytes.empty()) {
    size_t n = Utf8SequenceLength(bytes);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(bytes.front()));
      n = 1;
    } else {
      out.append(bytes.substr(0, n));
    }
    bytes.remove_prefix(n);
  }
  return out;
}

nlohmann::json MessageToJson(const Message& msg) {
  nlohmann::json out = nlohmann::json::object();
  const auto& desc = *msg.GetDescriptor();
  const Reflection& r = *msg.GetReflection();
  for (int i = 0; i < desc.field_count(); ++i) {
    const FieldDescriptor& f = *desc.field(i);
    if (f.is_repeated()) {
      nlohmann::json arr = nlohmann::json::array();
      for (int j = 0; j < r.FieldSize(msg, &f); ++j) arr.push_back(Value(msg, f, j));
      out[f.name()] = std::move(arr);
    } else if (!f.has_presence() || r.HasField(msg, &f)) {
      out[f.name()] = Value(msg, f, -1);
    }
  }
  return out;
}

}  // namespace cryo::image
