#include "image/wire_limits.h"

#include <google/protobuf/message.h>
#include <gtest/gtest.h>

#include "image/codec.h"
#include "image/cryo.pb.h"
#include "image/header.h"
#include "image/image_file.h"

namespace cryo::image {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// A length-delimited field `number` holding `value`, on the wire.
std::string LengthDelimited(int number, std::string_view value) {
  std::string out;
  auto varint = [&](uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  };
  varint(uint64_t(number) << 3 | 2);
  varint(value.size());
  out.append(value);
  return out;
}

std::string Repeat(const std::string& s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

void ExpectLimitError(const Status& s, const std::string& what) {
  ASSERT_FALSE(s) << "accepted; expected " << what;
  EXPECT_EQ(s.error().kind(), ErrorKind::kCorruptImage);
  EXPECT_NE(s.error().Message().find(what), std::string::npos) << s.error().Message();
}

TEST(WireLimits, EveryRepeatedAndBytesFieldOfTheSchemaHasALimit) {
  const auto* file = pb::Core::descriptor()->file();
  int checked = 0;
  for (int i = 0; i < file->message_type_count(); ++i) {
    const Descriptor* m = file->message_type(i);
    for (int j = 0; j < m->field_count(); ++j) {
      const FieldDescriptor* f = m->field(j);
      EXPECT_LT(f->number(), 64) << f->full_name();
      if (f->is_repeated()) {
        EXPECT_GT(f->options().GetExtension(pb::max_count), 0u) << f->full_name();
        ++checked;
      }
      if (f->type() == FieldDescriptor::TYPE_BYTES || f->type() == FieldDescriptor::TYPE_STRING) {
        EXPECT_GT(f->options().GetExtension(pb::max_size), 0u) << f->full_name();
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 20);
}

// The rules are tables generated at build time: checked here against the schema's descriptors,
// field by field. Each repeated field (up to 4096 elements) accepts max_count elements and
// refuses one more, naming the field; each string or bytes field refuses max_size + 1 bytes.
TEST(WireLimits, GeneratedRulesAgreeWithTheSchema) {
  const auto* file = pb::Core::descriptor()->file();
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  auto tag = [](int number, int wire) {
    std::string out;
    for (uint64_t v = uint64_t(number) << 3 | wire;; v >>= 7) {
      if (v < 0x80) {
        out.push_back(static_cast<char>(v));
        return out;
      }
      out.push_back(static_cast<char>(v | 0x80));
    }
  };
  int checked = 0;
  for (int i = 0; i < file->message_type_count(); ++i) {
    const Descriptor* m = file->message_type(i);
    const google::protobuf::Message& proto = *factory->GetPrototype(m);
    for (int j = 0; j < m->field_count(); ++j) {
      const FieldDescriptor* f = m->field(j);
      std::string name = m->name() + "." + f->name();
      if (f->is_repeated()) {
        uint32_t max = f->options().GetExtension(pb::max_count);
        if (max > 4096) continue;
        std::string one;
        switch (f->cpp_type()) {
          case FieldDescriptor::CPPTYPE_STRING:
          case FieldDescriptor::CPPTYPE_MESSAGE:
            one = LengthDelimited(f->number(), "");
            break;
          default:
            if (f->type() == FieldDescriptor::TYPE_FIXED64 ||
                f->type() == FieldDescriptor::TYPE_SFIXED64 ||
                f->type() == FieldDescriptor::TYPE_DOUBLE) {
              one = tag(f->number(), 1) + std::string(8, '\0');
            } else if (f->type() == FieldDescriptor::TYPE_FIXED32 ||
                       f->type() == FieldDescriptor::TYPE_SFIXED32 ||
                       f->type() == FieldDescriptor::TYPE_FLOAT) {
              one = tag(f->number(), 5) + std::string(4, '\0');
            } else {
              one = tag(f->number(), 0) + std::string(1, '\0');
            }
        }
        EXPECT_TRUE(CheckWireLimits(Repeat(one, max), proto)) << name;
        ExpectLimitError(CheckWireLimits(Repeat(one, max + 1), proto), name + ": more than");
        ++checked;
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        uint32_t max = f->options().GetExtension(pb::max_size);
        std::string bytes(max + 1, 'x');
        ExpectLimitError(CheckWireLimits(LengthDelimited(f->number(), bytes), proto),
                         name + ": " + std::to_string(max + 1) + " bytes");
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 20);
}

TEST(WireLimits, VmaCountAtTheLimitPassesAndOneMoreFails) {
  std::string empty_vma = LengthDelimited(16, "");
  std::string at_limit = Repeat(empty_vma, 1 << 20);
  EXPECT_TRUE(CheckWireLimits(at_limit, pb::Mm()));
  ExpectLimitError(CheckWireLimits(at_limit + empty_vma, pb::Mm()),
                   "Mm.vmas: more than 1048576 elements");
}

TEST(WireLimits, HugeCountsFailThroughTheDecoderToo) {
  // Every per-file count limit, through the real decoders: the file is well-formed apart from
  // the count, so only the limit can reject it.
  std::string one_too_many_fds = Repeat(LengthDelimited(2, ""), (1 << 20) + 1);
  model::Process p;
  p.pid = 0;
  ExpectLimitError(DecodeFds(FrameFile(Kind::kFds, one_too_many_fds), p), "Fds.fds");
  std::string threads = Repeat(LengthDelimited(10, ""), 65537);
  ExpectLimitError(DecodeCore(FrameFile(Kind::kCore, threads), p), "Core.threads");
  std::string runs = Repeat(LengthDelimited(3, ""), (1 << 24) + 1);
  ExpectLimitError(DecodePagemap(FrameFile(Kind::kPagemap, runs), p), "Pagemap.runs");
}

TEST(WireLimits, StringsXstateAuxvAndGroupsAreBounded) {
  pb::Core core;
  core.set_comm(std::string(4097, 'c'));
  ExpectLimitError(CheckWireLimits(core.SerializeAsString(), pb::Core()),
                   "Core.comm: 4097 bytes, at most 4096");
  core.set_comm(std::string(4096, 'c'));
  EXPECT_TRUE(CheckWireLimits(core.SerializeAsString(), pb::Core()));

  core.add_threads()->set_xstate(std::string(65537, 'x'));
  ExpectLimitError(CheckWireLimits(core.SerializeAsString(), pb::Core()),
                   "Thread.xstate: 65537 bytes");
  core.clear_threads();
  for (int i = 0; i < 65537; ++i) core.mutable_creds()->add_groups(i);
  ExpectLimitError(CheckWireLimits(core.SerializeAsString(), pb::Core()),
                   "Creds.groups: more than 65536");

  pb::Mm mm;
  for (int i = 0; i < 128; ++i) mm.add_auxv(i);
  EXPECT_TRUE(CheckWireLimits(mm.SerializeAsString(), pb::Mm()));
  mm.add_auxv(1);
  ExpectLimitError(CheckWireLimits(mm.SerializeAsString(), pb::Mm()), "Mm.auxv: more than 128");
  mm.mutable_vmas()->Add()->set_name(std::string(5000, 'n'));
  mm.clear_auxv();
  ExpectLimitError(CheckWireLimits(mm.SerializeAsString(), pb::Mm()), "Vma.name");
}

TEST(WireLimits, PackedAndUnpackedRepeatedScalarsCountTogether) {
  // auxv (field 13): 100 packed words, then 29 unpacked ones.
  std::string packed(100, '\x01');
  std::string payload = LengthDelimited(13, packed);
  for (int i = 0; i < 29; ++i) payload += std::string("\x68\x05", 2);  // tag 13 varint, 5
  ExpectLimitError(CheckWireLimits(payload, pb::Mm()), "Mm.auxv: more than 128");
}

TEST(WireLimits, MalformedEncodingsAreRejected) {
  const pb::Mm mm;
  ExpectLimitError(CheckWireLimits(std::string("\x08", 1), mm), "malformed");      // no value
  ExpectLimitError(CheckWireLimits(std::string("\x08\xff", 2), mm), "malformed");  // bad varint
  ExpectLimitError(CheckWireLimits(std::string("\x82\x01\x05x", 4), mm), "malformed");  // length
  ExpectLimitError(CheckWireLimits(std::string("\x0b", 1), mm), "wire type 3");         // group
  ExpectLimitError(CheckWireLimits(std::string("\x00\x00", 2), mm), "bad field tag");   // field 0
  ExpectLimitError(CheckWireLimits(std::string("\x08\x01\x08\x02", 4), mm), "pid given twice");
  ExpectLimitError(CheckWireLimits(LengthDelimited(13, "\x81"), mm), "bad packed encoding");
}

TEST(WireLimits, UnknownFieldsAreSkipped) {
  pb::Mm mm;
  mm.set_pid(7);
  std::string payload = mm.SerializeAsString() + LengthDelimited(60, "future") + "\xa8\x07\x01";
  EXPECT_TRUE(CheckWireLimits(payload, pb::Mm()));
  pb::Mm out;
  EXPECT_TRUE(ParsePayload(payload, out));
  EXPECT_EQ(out.pid(), 7);
}

}  // namespace
}  // namespace cryo::image
