// pagemap-<pid>.img ⇄ where each run of a process's private pages has its content.
#include <google/protobuf/arena.h>

#include "image/codec.h"
#include "image/codec_util.h"
#include "image/cryo.pb.h"
#include "image/image_file.h"

namespace cryo::image {

Result<std::string> EncodePagemap(const model::Process& p) {
  // Thousands of runs: an arena makes their allocation and release one bump and one free.
  google::protobuf::Arena arena;
  pb::Pagemap& m = *google::protobuf::Arena::CreateMessage<pb::Pagemap>(&arena);
  m.set_pid(p.pid);
  m.set_pages_file(p.pages_file);
  for (const model::PageRun& r : p.pagemap) {
    pb::PageRun* out = m.add_runs();
    out->set_vaddr(r.vaddr);
    out->set_nr_pages(r.nr_pages);
    out->set_offset(r.offset);
    out->set_flags(r.flags);
  }
  const model::PagesCompression& c = p.pages_compression;
  m.set_codec(static_cast<pb::PageCodec>(c.codec));
  m.set_block_size(c.block_size);
  m.set_raw_size(c.raw_size);
  for (const model::PageBlock& b : c.blocks) {
    pb::PageBlock* out = m.add_blocks();
    out->set_offset(b.offset);
    out->set_size(b.size);
  }
  return EncodeFile(Kind::kPagemap, m);
}

Status DecodePagemap(std::string_view file, model::Process& p) {
  google::protobuf::Arena arena;  // (see EncodePagemap)
  pb::Pagemap& m = *google::protobuf::Arena::CreateMessage<pb::Pagemap>(&arena);
  CRYO_TRYV(DecodeFile(file, Kind::kPagemap, m));
  CRYO_TRYV(CheckPid(m.pid(), p.pid));
  p.pages_file = m.pages_file();
  p.pagemap.clear();
  p.pagemap.reserve(m.runs_size());
  for (const pb::PageRun& r : m.runs()) {
    p.pagemap.push_back(
        {.vaddr = r.vaddr(), .nr_pages = r.nr_pages(), .offset = r.offset(), .flags = r.flags()});
  }
  model::PagesCompression& c = p.pages_compression;
  c = {};
  c.codec = static_cast<model::PageCodec>(m.codec());  // unknown values: refused by validation
  c.block_size = m.block_size();
  c.raw_size = m.raw_size();
  c.blocks.reserve(m.blocks_size());
  for (const pb::PageBlock& b : m.blocks()) c.blocks.push_back({b.offset(), b.size()});
  return {};
}

}  // namespace cryo::image
