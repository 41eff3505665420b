// For a failure test: at fd 42, one end of a unix socketpair whose queue holds a datagram
// carrying an fd (SCM_RIGHTS). The dump must fail naming fd 42, and the queue, fd included,
// must be as it was: the victim receives the datagram and the fd afterwards.
#include <sys/socket.h>

#include "victim.h"

#define ODD_FD 42

int main(int argc, char** argv) {
  v_init(argc, argv);
  int sv[2];
  V_CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
  V_CHECK_SYS(dup2(sv[0], ODD_FD) == ODD_FD, "dup2");
  close(sv[0]);
  int devnull = open("/dev/null", O_RDONLY);
  V_CHECK_SYS(devnull >= 0, "open /dev/null");
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {"fd!", 3};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &devnull, sizeof(int));
  V_CHECK_SYS(sendmsg(sv[1], &msg, 0) == 3, "sendmsg");
  V_CHECK_SYS(send(sv[1], "after", 5, 0) == 5, "send");
  close(devnull);

  v_ready();
  v_wait_go();

  char data[8];
  memset(cbuf, 0, sizeof cbuf);
  iov = (struct iovec){data, sizeof data};
  msg = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
  if (recvmsg(ODD_FD, &msg, MSG_DONTWAIT) != 3 || memcmp(data, "fd!", 3) != 0)
    v_fail("the datagram with the fd is gone");
  c = CMSG_FIRSTHDR(&msg);
  if (c == NULL || c->cmsg_type != SCM_RIGHTS) v_fail("the fd in flight is gone");
  int got;
  memcpy(&got, CMSG_DATA(c), sizeof got);
  char path[64], target[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", got);
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n < 0 || (target[n] = 0, strcmp(target, "/dev/null") != 0)) v_fail("received another fd");
  if (recv(ODD_FD, data, sizeof data, MSG_DONTWAIT) != 5 || memcmp(data, "after", 5) != 0)
    v_fail("the second datagram is gone or out of order");
  v_pass();
}
