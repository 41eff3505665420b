// Process attributes that guard security or change behaviour: no_new_privs (must never be lost:
// an execve could regain privileges), dumpable 0 (as ssh-agent sets it), and the personality.
#include <sys/personality.h>
#include <sys/prctl.h>

#include "victim.h"

int main(int argc, char** argv) {
  v_init(argc, argv);
  V_CHECK_SYS(personality(ADDR_NO_RANDOMIZE) >= 0, "personality");
  V_CHECK_SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS");
  V_CHECK_SYS(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "PR_SET_DUMPABLE");

  v_ready();
  v_wait_go();

  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) v_fail("no_new_privs was lost");
  int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  if (dumpable != 0) v_fail("dumpable is %d, not 0", dumpable);
  int persona = personality(0xffffffff);
  if (persona != ADDR_NO_RANDOMIZE) v_fail("personality is %#x, not %#x", persona, ADDR_NO_RANDOMIZE);
  v_pass();
}
