// For the failure test of the network lock: an established TCP connection (both ends here, bytes
// queued both ways) at fds below 42, and at fd 42 an io_uring instance cryo cannot checkpoint.
// `dump --tcp-established` locks the connection and puts it in repair mode before it reaches fd
// 42, then fails: the connection must be out of repair mode and unlocked, every queued byte
// still there, and more data must flow.
#include <sys/syscall.h>

#include "net.h"

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

#define ODD_FD 42
#define QUEUED 30000

int main(int argc, char** argv) {
  v_init(argc, argv);
  int l = n_bound(AF_INET, SOCK_STREAM);
  V_CHECK_SYS(listen(l, 1) == 0, "listen");
  int c = n_connect(AF_INET, n_port_of(l));
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  V_CHECK_SYS(s >= 0, "accept");
  close(l);
  char params[120];
  memset(params, 0, sizeof params);
  int ring = (int)syscall(SYS_io_uring_setup, 4, params);
  if (ring < 0) v_skip("io_uring_setup: %s", strerror(errno));
  V_CHECK_SYS(dup2(ring, ODD_FD) == ODD_FD, "dup2");
  close(ring);
  n_send_stream("queue c", c, 21, 0, QUEUED);
  n_send_stream("queue s", s, 22, 0, QUEUED);
  struct timespec ts = {0, 100 * 1000 * 1000};
  nanosleep(&ts, NULL);
  v_ready();
  v_wait_go();
  n_recv_stream("queued to s", s, 21, 0, QUEUED);
  n_recv_stream("queued to c", c, 22, 0, QUEUED);
  n_send_stream("after c", c, 21, QUEUED, 50000);
  n_recv_stream("after s", s, 21, QUEUED, 50000);
  n_send_stream("after s", s, 22, QUEUED, 50000);
  n_recv_stream("after c", c, 22, QUEUED, 50000);
  n_close_reset(c);
  n_close_reset(s);
  v_pass();
}
