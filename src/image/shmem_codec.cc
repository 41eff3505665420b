// shmem.img ⇄ the tree's shared-memory objects (model/shmem.h).
#include "image/cryo.pb.h"
#include "image/image_file.h"
#include "image/shmem_io.h"

namespace cryo::image {

static_assert(int(model::ShmemKind::kAnon) == pb::SHMEM_ANON);
static_assert(int(model::ShmemKind::kMemfd) == pb::SHMEM_MEMFD);
static_assert(int(model::ShmemKind::kTmpfs) == pb::SHMEM_TMPFS);
static_assert(int(model::ShmemKind::kSysv) == pb::SHMEM_SYSV);

Result<std::string> EncodeShmem(const model::ShmemTable& t) {
  pb::Shmem m;
  m.set_pages_file(t.pages_file);
  for (const model::ShmemObject& o : t.objects) {
    pb::ShmemObject* out = m.add_objects();
    out->set_id(o.id);
    out->set_kind(static_cast<pb::ShmemKind>(o.kind));
    out->set_dev(o.dev);
    out->set_ino(o.ino);
    out->set_size(o.size);
    out->set_name(o.name);
    out->set_mode(o.mode);
    out->set_seals(o.seals);
    out->set_flags(o.flags);
    out->set_sysv_key(o.sysv_key);
    out->set_sysv_id(o.sysv_id);
    out->set_uid(o.uid);
    out->set_gid(o.gid);
    for (const model::ShmemRun& r : o.runs) {
      pb::ShmemRun* run = out->add_runs();
      run->set_offset(r.offset);
      run->set_nr_pages(r.nr_pages);
      run->set_file_offset(r.file_offset);
    }
  }
  return EncodeFile(Kind::kShmem, m);
}

Result<model::ShmemTable> DecodeShmem(std::string_view file) {
  pb::Shmem m;
  CRYO_TRYV(DecodeFile(file, Kind::kShmem, m));
  model::ShmemTable t;
  t.pages_file = m.pages_file();
  t.objects.reserve(m.objects_size());
  for (const pb::ShmemObject& in : m.objects()) {
    // Proto3 enums are open: a stored number outside the enum arrives as is.
    if (!pb::ShmemKind_IsValid(in.kind())) {
      return MakeError(ErrorKind::kCorruptImage, "shared object {}: unknown kind {}", in.id(),
                       int(in.kind()));
    }
    model::ShmemObject o{.id = in.id(),
                         .kind = static_cast<model::ShmemKind>(in.kind()),
                         .dev = in.dev(),
                         .ino = in.ino(),
                         .size = in.size(),
                         .name = in.name(),
                         .mode = in.mode(),
                         .seals = in.seals(),
                         .flags = in.flags(),
                         .sysv_key = in.sysv_key(),
                         .sysv_id = in.sysv_id(),
                         .uid = in.uid(),
                         .gid = in.gid(),
                         .runs = {}};
    o.runs.reserve(in.runs_size());
    for (const pb::ShmemRun& r : in.runs()) {
      o.runs.push_back({r.offset(), r.nr_pages(), r.file_offset()});
    }
    t.objects.push_back(std::move(o));
  }
  return t;
}

}  // namespace cryo::image
