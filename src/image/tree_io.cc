#include "image/tree_io.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "image/codec.h"
#include "image/format.h"
#include "image/shmem_io.h"
#include "image/validate.h"

namespace cryo::image {
namespace {

class DirSource : public ImageSource {
 public:
  explicit DirSource(const ImageDir& dir) : dir_(dir) {}
  Result<std::string> Read(std::string_view name) const override {
    return ReadImageFile(dir_, name, kHeaderSize + kMaxPayloadSize);
  }
  Result<uint64_t> Size(std::string_view name) const override { return ImageFileSize(dir_, name); }

 private:
  const ImageDir& dir_;
};

// Reads `name` and applies `decode` to it, naming the file in any error.
template <typename Fn>
auto DecodeNamed(const ImageSource& source, const std::string& name, Fn decode)
    -> decltype(decode(std::string_view{})) {
  std::string file = CRYO_TRY(source.Read(name));
  auto r = decode(std::string_view(file));
  if (!r) return Wrapped(std::move(r).error(), name);
  return r;
}

Status Named(Status s, std::string_view name) {
  if (!s) return Wrapped(std::move(s).error(), name);
  return s;
}

Status CheckThreadsMatch(const std::vector<model::Thread>& core,
                         const std::vector<pid_t>& pstree_tids) {
  bool same = core.size() == pstree_tids.size();
  for (size_t i = 0; same && i < core.size(); ++i) same = core[i].tid == pstree_tids[i];
  if (!same) {
    return MakeError(ErrorKind::kCorruptImage, "threads differ from those in {}", kPstreeFile);
  }
  return {};
}

// Each per-process file: decode, then the checks that need only what is decoded so far.
Status DecodeCoreChecked(std::string_view f, model::Process& p) {
  std::vector<pid_t> pstree_tids;
  for (const model::Thread& t : p.threads) pstree_tids.push_back(t.tid);
  CRYO_TRYV(DecodeCore(f, p));
  CRYO_TRYV(ValidateCore(p));
  return CheckThreadsMatch(p.threads, pstree_tids);
}

Status DecodeMmChecked(std::string_view f, model::Process& p) {
  CRYO_TRYV(DecodeMm(f, p));
  return ValidateMm(p);
}

Status DecodeFdsChecked(std::string_view f, model::Process& p) {
  CRYO_TRYV(DecodeFds(f, p));
  return ValidateFds(p);
}

Status DecodePagemapChecked(std::string_view f, model::Process& p, const ImageSource& source) {
  CRYO_TRYV(DecodePagemap(f, p));
  uint64_t pages_size = 0;
  if (NeedsPagesFile(p)) {
    CRYO_TRYV(ValidatePagesFileName(p.pages_file));
    pages_size = CRYO_TRY(source.Size(p.pages_file));
  }
  return ValidatePagemap(p, pages_size);
}

Status DecodeProcess(const ImageSource& source, model::Process& p) {
  auto core = [&](std::string_view f) { return DecodeCoreChecked(f, p); };
  auto mm = [&](std::string_view f) { return DecodeMmChecked(f, p); };
  auto fds = [&](std::string_view f) { return DecodeFdsChecked(f, p); };
  auto pagemap = [&](std::string_view f) { return DecodePagemapChecked(f, p, source); };
  CRYO_TRYV(DecodeNamed(source, CoreFileName(p.pid), core));
  CRYO_TRYV(DecodeNamed(source, MmFileName(p.pid), mm));
  CRYO_TRYV(DecodeNamed(source, FdsFileName(p.pid), fds));
  return DecodeNamed(source, PagemapFileName(p.pid), pagemap);
}

Result<model::ProcessTree> DecodePstreeChecked(std::string_view f) {
  model::ProcessTree t = CRYO_TRY(DecodePstree(f));
  CRYO_TRYV(ValidatePstree(t));
  return t;
}

// The checks DecodeTree makes, short of the pages files' sizes.
Status ValidateForWrite(const model::ProcessTree& tree) {
  if (tree.processes.empty() || tree.root_pid != tree.processes.front().pid) {
    return MakeError(ErrorKind::kCorruptImage, "root pid {} is not the first process",
                     tree.root_pid);
  }
  CRYO_TRYV(Named(ValidatePstree(tree), kPstreeFile));
  CRYO_TRYV(ValidateSharedFiles(tree));
  for (const model::Process& p : tree.processes) {
    if (p.zombie) continue;
    CRYO_TRYV(Named(ValidateCore(p), CoreFileName(p.pid)));
    CRYO_TRYV(Named(ValidateMm(p), MmFileName(p.pid)));
    CRYO_TRYV(Named(ValidateFds(p), FdsFileName(p.pid)));
    CRYO_TRYV(
        Named(ValidatePagemap(p, std::numeric_limits<uint64_t>::max()), PagemapFileName(p.pid)));
  }
  CRYO_TRYV(ValidateInheritedPages(tree));
  CRYO_TRYV(Named(ValidateShmem(tree.shmem, std::numeric_limits<uint64_t>::max()), kShmemFile));
  return Named(ValidateShmemRefs(tree), kShmemFile);
}

bool UsesShmem(const model::ProcessTree& tree) {
  for (const model::Process& p : tree.processes) {
    for (const model::Vma& v : p.vmas) {
      if (v.shmem_id != 0) return true;
    }
    for (const model::Fd& f : p.fds) {
      if (f.shmem_id != 0 || f.type == model::FdType::kShmem) return true;
    }
  }
  return false;
}

// shmem.img is read when some mapping or fd names a shared object (it is then required), and
// checked against its pages file and against every reference.
Status DecodeShmemChecked(const ImageSource& source, model::ProcessTree& tree) {
  if (UsesShmem(tree)) {
    auto decode = [&](std::string_view f) -> Status {
      tree.shmem = CRYO_TRY(DecodeShmem(f));
      uint64_t pages_size = 0;
      bool any_run = std::any_of(tree.shmem.objects.begin(), tree.shmem.objects.end(),
                                 [](const model::ShmemObject& o) { return !o.runs.empty(); });
      if (any_run) {
        CRYO_TRYV(ValidatePagesFileName(tree.shmem.pages_file));
        pages_size = CRYO_TRY(source.Size(tree.shmem.pages_file));
      }
      return ValidateShmem(tree.shmem, pages_size);
    };
    CRYO_TRYV(DecodeNamed(source, std::string(kShmemFile), decode));
  }
  return Named(ValidateShmemRefs(tree), kShmemFile);
}

}  // namespace

Result<EncodedFiles> EncodeTree(const model::ProcessTree& tree) {
  if (auto ok = ValidateForWrite(tree); !ok) {
    return std::unexpected(
        Error(ErrorKind::kInternal, "refusing to write an invalid tree: " + ok.error().Message()));
  }
  EncodedFiles files;
  files[std::string(kPstreeFile)] = CRYO_TRY_CTX(EncodePstree(tree), "{}", kPstreeFile);
  for (const model::Process& p : tree.processes) {
    if (p.zombie) continue;
    files[CoreFileName(p.pid)] = CRYO_TRY_CTX(EncodeCore(p), "{}", CoreFileName(p.pid));
    files[MmFileName(p.pid)] = CRYO_TRY_CTX(EncodeMm(p), "{}", MmFileName(p.pid));
    files[FdsFileName(p.pid)] = CRYO_TRY_CTX(EncodeFds(p), "{}", FdsFileName(p.pid));
    files[PagemapFileName(p.pid)] = CRYO_TRY_CTX(EncodePagemap(p), "{}", PagemapFileName(p.pid));
  }
  if (!tree.shmem.empty()) {
    files[std::string(kShmemFile)] = CRYO_TRY_CTX(EncodeShmem(tree.shmem), "{}", kShmemFile);
  }
  return files;
}

Result<model::ProcessTree> DecodeTree(const ImageSource& source) {
  model::ProcessTree tree =
      CRYO_TRY(DecodeNamed(source, std::string(kPstreeFile), DecodePstreeChecked));
  for (model::Process& p : tree.processes) {
    if (!p.zombie) CRYO_TRYV(DecodeProcess(source, p));
  }
  CRYO_TRYV(DecodeShmemChecked(source, tree));
  CRYO_TRYV(ValidateSharedFiles(tree));
  CRYO_TRYV(ValidateInheritedPages(tree));
  return tree;
}

Status WriteTree(const ImageDir& dir, const model::ProcessTree& tree) {
  EncodedFiles files = CRYO_TRY_CTX(EncodeTree(tree), "write image {}", dir.path());
  for (const auto& [name, bytes] : files) CRYO_TRYV(WriteImageFile(dir, name, bytes));
  return {};
}

Result<model::ProcessTree> ReadTree(const ImageDir& dir) {
  DirSource source(dir);
  return CRYO_TRY_CTX(DecodeTree(source), "read image {}", dir.path());
}

}  // namespace cryo::image
