// mm-<pid>.img ⇄ a process's mm fields (PR_SET_MM_MAP) and its mappings.
#include "image/codec.h"
#include "image/codec_util.h"
#include "image/cryo.pb.h"
#include "image/image_file.h"

namespace cryo::image {
namespace {

static_assert(int(model::VmaKind::kAnonPrivate) == pb::VMA_ANON_PRIVATE);
static_assert(int(model::VmaKind::kFilePrivate) == pb::VMA_FILE_PRIVATE);
static_assert(int(model::VmaKind::kFileShared) == pb::VMA_FILE_SHARED);
static_assert(int(model::VmaKind::kAnonShared) == pb::VMA_ANON_SHARED);
static_assert(int(model::VmaKind::kVdso) == pb::VMA_VDSO);
static_assert(int(model::VmaKind::kVvar) == pb::VMA_VVAR);
static_assert(int(model::VmaKind::kSysvShm) == pb::VMA_SYSV_SHM);

void ToProto(const model::Vma& in, pb::Vma& out) {
  out.set_start(in.start);
  out.set_end(in.end);
  out.set_prot(in.prot);
  out.set_flags(in.flags);
  out.set_kind(static_cast<pb::VmaKind>(in.kind));
  out.set_pgoff(in.pgoff);
  out.set_name(in.name);
  FileIdToProto(in.file, *out.mutable_file());
  out.set_shmem_id(in.shmem_id);
}

Result<model::Vma> FromProto(const pb::Vma& in, size_t index) {
  // Proto3 enums are open: a stored number outside the enum arrives as is.
  if (!pb::VmaKind_IsValid(in.kind())) {
    return MakeError(ErrorKind::kCorruptImage, "vma {}: unknown kind {}", index, int(in.kind()));
  }
  return model::Vma{.start = in.start(),
                    .end = in.end(),
                    .prot = in.prot(),
                    .flags = in.flags(),
                    .kind = static_cast<model::VmaKind>(in.kind()),
                    .pgoff = in.pgoff(),
                    .name = in.name(),
                    .file = FileIdFromProto(in.file()),
                    .shmem_id = in.shmem_id()};
}

}  // namespace

Result<std::string> EncodeMm(const model::Process& p) {
  pb::Mm m;
  const model::MmInfo& mm = p.mm;
  m.set_pid(p.pid);
  m.set_start_code(mm.start_code);
  m.set_end_code(mm.end_code);
  m.set_start_data(mm.start_data);
  m.set_end_data(mm.end_data);
  m.set_start_brk(mm.start_brk);
  m.set_brk(mm.brk);
  m.set_start_stack(mm.start_stack);
  m.set_arg_start(mm.arg_start);
  m.set_arg_end(mm.arg_end);
  m.set_env_start(mm.env_start);
  m.set_env_end(mm.env_end);
  for (uint64_t word : mm.auxv) m.add_auxv(word);
  m.set_exe_path(mm.exe_path);
  FileIdToProto(mm.exe_file, *m.mutable_exe_file());
  m.set_vdso_hash(mm.vdso_hash);
  for (const model::Vma& v : p.vmas) ToProto(v, *m.add_vmas());
  return EncodeFile(Kind::kMm, m);
}

Status DecodeMm(std::string_view file, model::Process& p) {
  pb::Mm m;
  CRYO_TRYV(DecodeFile(file, Kind::kMm, m));
  CRYO_TRYV(CheckPid(m.pid(), p.pid));
  model::MmInfo& mm = p.mm;
  mm.start_code = m.start_code();
  mm.end_code = m.end_code();
  mm.start_data = m.start_data();
  mm.end_data = m.end_data();
  mm.start_brk = m.start_brk();
  mm.brk = m.brk();
  mm.start_stack = m.start_stack();
  mm.arg_start = m.arg_start();
  mm.arg_end = m.arg_end();
  mm.env_start = m.env_start();
  mm.env_end = m.env_end();
  mm.auxv.assign(m.auxv().begin(), m.auxv().end());
  mm.exe_path = m.exe_path();
  mm.exe_file = FileIdFromProto(m.exe_file());
  mm.vdso_hash = m.vdso_hash();
  p.vmas.clear();
  p.vmas.reserve(m.vmas_size());
  for (int i = 0; i < m.vmas_size(); ++i) p.vmas.push_back(CRYO_TRY(FromProto(m.vmas(i), i)));
  return {};
}

}  // namespace cryo::image
