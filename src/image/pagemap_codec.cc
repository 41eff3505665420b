// pagemap-<pid>.img ⇄ where each run of a process's private pages has its content.
#include "image/codec.h"
#include "image/codec_util.h"
#include "image/cryo.pb.h"
#include "image/image_file.h"

namespace cryo::image {

Result<std::string> EncodePagemap(const model::Process& p) {
  pb::Pagemap m;
  m.set_pid(p.pid);
  m.set_pages_file(p.pages_file);
  for (const model::PageRun& r : p.pagemap) {
    pb::PageRun* out = m.add_runs();
    out->set_vaddr(r.vaddr);
    out->set_nr_pages(r.nr_pages);
    out->set_offset(r.offset);
    out->set_flags(r.flags);
  }
  return EncodeFile(Kind::kPagemap, m);
}

Status DecodePagemap(std::string_view file, model::Process& p) {
  pb::Pagemap m;
  CRYO_TRYV(DecodeFile(file, Kind::kPagemap, m));
  CRYO_TRYV(CheckPid(m.pid(), p.pid));
  p.pages_file = m.pages_file();
  p.pagemap.clear();
  p.pagemap.reserve(m.runs_size());
  for (const pb::PageRun& r : m.runs()) {
    p.pagemap.push_back(
        {.vaddr = r.vaddr(), .nr_pages = r.nr_pages(), .offset = r.offset(), .flags = r.flags()});
  }
  return {};
}

}  // namespace cryo::image
