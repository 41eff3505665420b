// For a failure test: at fd 42, the read end of a pipe with data whose write end was closed
// (a writer outside the process, as far as cryo can tell). The dump must fail naming fd 42 and
// leave the data in the pipe.
#include "victim.h"

#define ODD_FD 42

int main(int argc, char** argv) {
  v_init(argc, argv);
  int p[2];
  V_CHECK_SYS(pipe(p) == 0, "pipe");
  V_CHECK_SYS(write(p[1], "kept", 4) == 4, "write");
  V_CHECK_SYS(dup2(p[0], ODD_FD) == ODD_FD, "dup2");
  close(p[0]);
  close(p[1]);

  v_ready();
  v_wait_go();

  char buf[8];
  if (read(ODD_FD, buf, sizeof buf) != 4 || memcmp(buf, "kept", 4) != 0) v_fail("pipe data lost");
  v_pass();
}
