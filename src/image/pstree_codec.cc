// pstree.img ⇄ the skeleton of a model::ProcessTree.
#include "image/codec.h"
#include "image/cryo.pb.h"
#include "image/image_file.h"

namespace cryo::image {

Result<std::string> EncodePstree(const model::ProcessTree& tree) {
  pb::Pstree m;
  for (const model::Process& p : tree.processes) {
    pb::PstreeEntry* e = m.add_processes();
    e->set_pid(p.pid);
    e->set_ppid(p.ppid);
    e->set_pgid(p.pgid);
    e->set_sid(p.sid);
    for (const model::Thread& t : p.threads) e->add_tids(t.tid);
    e->set_zombie(p.zombie);
    e->set_exit_status(p.exit_status);
  }
  return EncodeFile(Kind::kPstree, m);
}

Result<model::ProcessTree> DecodePstree(std::string_view file) {
  pb::Pstree m;
  CRYO_TRYV(DecodeFile(file, Kind::kPstree, m));
  model::ProcessTree tree;
  tree.processes.reserve(m.processes_size());
  for (const pb::PstreeEntry& e : m.processes()) {
    model::Process& p = tree.processes.emplace_back();
    p.pid = e.pid();
    p.ppid = e.ppid();
    p.pgid = e.pgid();
    p.sid = e.sid();
    p.zombie = e.zombie();
    p.exit_status = e.exit_status();
    p.threads.reserve(e.tids_size());
    for (int32_t tid : e.tids()) p.threads.emplace_back().tid = tid;
  }
  if (!tree.processes.empty()) tree.root_pid = tree.processes.front().pid;
  return tree;
}

}  // namespace cryo::image
