#include "dump/unix_diag.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>

#include <cstring>

#include "base/unique_fd.h"

namespace cryo::dump {
namespace {

constexpr uint32_t kNoCookie = ~0u;

UnixSocketInfo ParseReply(const unix_diag_msg* msg, size_t len) {
  UnixSocketInfo out;
  out.type = msg->udiag_type;
  out.state = msg->udiag_state;
  auto* attr = reinterpret_cast<const rtattr*>(msg + 1);
  size_t left = len - NLMSG_ALIGN(sizeof *msg);
  for (; RTA_OK(attr, left); attr = RTA_NEXT(attr, left)) {
    const char* data = static_cast<const char*>(RTA_DATA(attr));
    size_t size = RTA_PAYLOAD(attr);
    if (attr->rta_type == UNIX_DIAG_PEER && size >= sizeof(uint32_t)) {
      uint32_t peer = 0;
      std::memcpy(&peer, data, sizeof peer);
      out.peer_ino = peer;
    } else if (attr->rta_type == UNIX_DIAG_RQLEN && size >= sizeof(unix_diag_rqlen)) {
      unix_diag_rqlen q{};
      std::memcpy(&q, data, sizeof q);
      out.rqueue = q.udiag_rqueue;
      out.wqueue = q.udiag_wqueue;
    } else if (attr->rta_type == UNIX_DIAG_NAME) {
      out.name.assign(data, size);
    }
  }
  return out;
}

}  // namespace

Result<UnixSocketInfo> QueryUnixSocket(uint64_t ino) {
  UniqueFd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) return ErrnoError("open sock_diag netlink socket");
  struct {
    nlmsghdr nlh;
    unix_diag_req req;
  } request{};
  request.nlh.nlmsg_len = sizeof request;
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST;
  request.req.sdiag_family = AF_UNIX;
  request.req.udiag_states = ~0u;
  request.req.udiag_ino = static_cast<uint32_t>(ino);
  request.req.udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN;
  request.req.udiag_cookie[0] = kNoCookie;
  request.req.udiag_cookie[1] = kNoCookie;
  if (::send(nl.get(), &request, sizeof request, 0) < 0) {
    return ErrnoError("sock_diag request for socket {}", ino);
  }
  alignas(nlmsghdr) char buf[8192];
  ssize_t n = ::recv(nl.get(), buf, sizeof buf, 0);
  if (n < 0) return ErrnoError("sock_diag reply for socket {}", ino);
  auto* h = reinterpret_cast<const nlmsghdr*>(buf);
  size_t left = static_cast<size_t>(n);
  if (!NLMSG_OK(h, left)) {
    return MakeError(ErrorKind::kInternal, "sock_diag: short reply for socket {}", ino);
  }
  if (h->nlmsg_type == NLMSG_ERROR) {
    auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    return SysError(-err->error, fmt::format("sock_diag: unix socket {}", ino));
  }
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(unix_diag_msg))) {
    return MakeError(ErrorKind::kInternal, "sock_diag: unexpected reply for socket {}", ino);
  }
  return ParseReply(static_cast<const unix_diag_msg*>(NLMSG_DATA(h)),
                    h->nlmsg_len - NLMSG_LENGTH(0));
}

}  // namespace cryo::dump
