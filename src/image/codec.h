// model ⇄ whole metadata files, one pair of functions per kind of file. Decoders convert and
// check what the conversion itself needs (enum ranges, fixed sizes, required parts, the pid the
// file is for); semantic checks are in image/validate.h. Errors do not name the file.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"
#include "model/process.h"

namespace cryo::image {

// pstree.img: every process's pid, ppid, pgid, sid and thread ids.
Result<std::string> EncodePstree(const model::ProcessTree& tree);
// A tree whose processes hold only those fields, each thread only its tid.
Result<model::ProcessTree> DecodePstree(std::string_view file);

// core-<pid>.img: comm, umask, cwd, root, creds, rlimits, sigactions, shared pending signals,
// threads (replacing p.threads). The file must be for p.pid.
Result<std::string> EncodeCore(const model::Process& p);
Status DecodeCore(std::string_view file, model::Process& p);

// mm-<pid>.img: p.mm and p.vmas.
Result<std::string> EncodeMm(const model::Process& p);
Status DecodeMm(std::string_view file, model::Process& p);

// fds-<pid>.img: p.fds.
Result<std::string> EncodeFds(const model::Process& p);
Status DecodeFds(std::string_view file, model::Process& p);

// pagemap-<pid>.img: p.pagemap and p.pages_file.
Result<std::string> EncodePagemap(const model::Process& p);
Status DecodePagemap(std::string_view file, model::Process& p);

}  // namespace cryo::image
