#include "restore/lazy_source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "mem/page_wire.h"
#include "restore/lazy.h"

namespace cryo::restore {

void IntervalSet::Insert(uint64_t s, uint64_t e) {
  if (s >= e) return;
  auto it = m_.upper_bound(s);
  if (it != m_.begin() && std::prev(it)->second >= s) {
    --it;
    s = it->first;
    e = std::max(e, it->second);
    it = m_.erase(it);
  }
  while (it != m_.end() && it->first <= e) {
    e = std::max(e, it->second);
    it = m_.erase(it);
  }
  m_[s] = e;
}

void IntervalSet::Erase(uint64_t s, uint64_t e) {
  if (s >= e) return;
  auto it = m_.upper_bound(s);
  if (it != m_.begin() && std::prev(it)->second > s) --it;
  while (it != m_.end() && it->first < e) {
    uint64_t a = it->first, b = it->second;
    it = m_.erase(it);
    if (a < s) m_[a] = s;
    if (b > e) {
      m_[e] = b;
      break;
    }
  }
}

Status Remote::Connect(const std::string& host_port, int fd) {
  peer_ = fd >= 0 ? "the migration source" : host_port;
  if (fd >= 0) {
    fd_.Reset(fd);
  } else {
    fd_ = CRYO_TRY(mem::WireConnect(host_port));
  }
  return mem::WireHello(fd_.get(), true, peer_);
}

Status Remote::Get(pid_t pid, uint64_t addr, std::span<std::byte> out) {
  auto get = mem::WireFrame::Of(mem::WireType::kGet);
  get.pid = pid;
  get.addr = addr;
  get.len = out.size();
  CRYO_TRYV(mem::WireSend(fd_.get(), get));
  auto r = CRYO_TRY(mem::WireRecv(fd_.get(), peer_));
  if (!r.Is(mem::WireType::kData) || r.pid != pid || r.addr != addr || r.len != out.size()) {
    return MakeError(ErrorKind::kCorruptImage,
                     "page server {}: answer to pid {} {:#x} (+{}) does not match it", peer_, pid,
                     addr, out.size());
  }
  bytes_ += out.size();
  return mem::WireRecvPayload(fd_.get(), out, peer_);
}

void Remote::Done() {
  auto done = mem::WireFrame::Of(mem::WireType::kDone);
  (void)mem::WireSend(fd_.get(), done);
}

Source::~Source() {
  if (map != nullptr) ::munmap(const_cast<std::byte*>(map), map_len);
}

Status Source::OpenPages(const image::ImageDir& dir, const std::string& dir_path) {
  fd.Reset(::openat(dir.fd(), p->pages_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open {}", p->pages_file);
  reader = std::make_unique<image::PagesReader>(fd.get(), dir_path + "/" + p->pages_file,
                                                &p->pages_compression);
  struct stat st {};
  if (p->pages_compression.codec == model::PageCodec::kNone && ::fstat(fd.get(), &st) == 0 &&
      st.st_size > 0) {
    void* m = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd.get(), 0);
    if (m != MAP_FAILED) {
      map = static_cast<const std::byte*>(m);
      map_len = static_cast<size_t>(st.st_size);
    }
  }
  return {};
}

const model::PageRun& Source::RunAt(uint64_t a) const {
  auto it = std::upper_bound(p->pagemap.begin(), p->pagemap.end(), a,
                             [](uint64_t x, const model::PageRun& r) { return x < r.vaddr; });
  return *std::prev(it);
}

const std::byte* Source::Mapped(uint64_t a) const {
  if (map == nullptr) return nullptr;
  const model::PageRun& r = RunAt(a);
  if (!(r.flags & model::kPagePresent)) return nullptr;
  return map + r.offset + (a - r.vaddr);  // inside: ValidatePagemap checked the offsets
}

Status Source::Read(uint64_t a, std::span<std::byte> out, image::BlockCache& cache) const {
  const model::PageRun& r = RunAt(a);
  if (IsRemoteRun(r)) return remote->Get(p->pid, a, out);
  if (r.flags & model::kPageInParent) return ReadFromChain(a, out, cache);
  return reader->Read(r.offset + (a - r.vaddr), out, cache);
}

Status Source::ReadFromChain(uint64_t a, std::span<std::byte> out, image::BlockCache& cache) const {
  if (!chain) {
    return MakeError(ErrorKind::kInternal, "pid {}: {:#x} is in a parent image", p->pid, a);
  }
  std::vector<image::PageSegment> segs;
  CRYO_TRYV(chain->Resolve(a, out.size(), segs));
  std::memset(out.data(), 0, out.size());
  for (const auto& sg : segs) {
    CRYO_TRYV(chain->pages(sg.level).Read(sg.offset, out.subspan(sg.vaddr - a, sg.len), cache));
  }
  return {};
}

std::pair<uint64_t, uint64_t> Source::Offset(uint64_t a) const {
  const model::PageRun& r = RunAt(a);
  return {r.offset + (a - r.vaddr), r.vaddr + (r.nr_pages << 12) - a};
}

}  // namespace cryo::restore
