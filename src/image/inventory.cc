#include "image/inventory.h"

#include "image/cryo.pb.h"
#include "image/image_file.h"

namespace cryo::image {

Result<std::string> EncodeInventory(const Inventory& inv) {
  pb::Inventory m;
  m.set_format_version(inv.format_version);
  m.set_cryo_version(inv.cryo_version);
  m.set_root_pid(inv.root_pid);
  m.set_kernel_release(inv.kernel_release);
  m.set_page_size(inv.page_size);
  m.set_arch(inv.arch);
  m.set_created_ns(inv.created_ns);
  if (inv.parent_dir) m.set_parent_dir(*inv.parent_dir);
  return EncodeFile(Kind::kInventory, m);
}

Result<Inventory> DecodeInventory(std::string_view file) {
  pb::Inventory m;
  CRYO_TRYV(DecodeFile(file, Kind::kInventory, m));
  Inventory inv;
  inv.format_version = m.format_version();
  inv.cryo_version = m.cryo_version();
  inv.root_pid = m.root_pid();
  inv.kernel_release = m.kernel_release();
  inv.page_size = m.page_size();
  inv.arch = m.arch();
  inv.created_ns = m.created_ns();
  if (m.has_parent_dir()) inv.parent_dir = m.parent_dir();

  if (inv.format_version != kFormatVersion) {
    return MakeError(ErrorKind::kCorruptImage,
                     "format version {} in the inventory, but {} in its header", inv.format_version,
                     kFormatVersion);
  }
  if (inv.root_pid <= 0) {
    return MakeError(ErrorKind::kCorruptImage, "root pid {} is not positive", inv.root_pid);
  }
  if (inv.page_size != kPageSize) {
    return MakeError(ErrorKind::kUnsupported, "page size {}, this cryo handles only {}",
                     inv.page_size, kPageSize);
  }
  if (inv.arch != "x86_64") {
    return MakeError(ErrorKind::kUnsupported, "architecture '{}', this cryo handles only x86_64",
                     inv.arch);
  }
  if (inv.parent_dir) {
    const std::string& p = *inv.parent_dir;
    if (p.empty() || p.front() == '/' || p.find('\0') != std::string::npos) {
      return MakeError(ErrorKind::kCorruptImage,
                       "parent image directory '{}' is not a non-empty relative path", p);
    }
  }
  return inv;
}

Status WriteInventory(const ImageDir& dir, const Inventory& inv) {
  std::string file = CRYO_TRY_CTX(EncodeInventory(inv), "write {}", kInventoryFile);
  return WriteImageFile(dir, kInventoryFile, file);
}

Result<Inventory> ReadInventory(const ImageDir& dir) {
  std::string file = CRYO_TRY_CTX(ReadImageFile(dir, kInventoryFile, kHeaderSize + kMaxPayloadSize),
                                  "image {}", dir.path());
  return CRYO_TRY_CTX(DecodeInventory(file), "image {}: {}", dir.path(), kInventoryFile);
}

}  // namespace cryo::image
