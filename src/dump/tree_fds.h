// Open files shared across the processes of a dumped tree: which fds of different processes are
// one open file description (kcmp KCMP_FILE), and pipes and socketpairs whose ends are in
// different processes. Such descriptions get a tree-wide model::Fd::shared_file id; restore
// creates each once and hands it to every process that had it.
#pragma once

#include "base/error.h"
#include "model/process.h"

namespace cryo::dump {

// Runs once every live process of `tree` is captured (CaptureFds with in_tree), while all are
// frozen. Assigns shared_file ids; turns stdio that is a pipe with both ends in the tree (a shell
// pipeline) into a pipe of the tree; copies the bytes buffered in cross-process pipes once and the
// queues of cross-process socketpairs. kUnsupported naming pid and fd: a pipe or socket whose
// other end is outside the tree, an epoll instance used by several processes.
Status LinkSharedFiles(model::ProcessTree& tree);

}  // namespace cryo::dump
