// Process-control flags kept across a restore: the parent-death signal (PR_SET_PDEATHSIG; a
// signal whose default action is to ignore, as the parent may change), the child-subreaper
// flag, and next to them no_new_privs and dumpable 1 (already covered: still asserted here).
#include <signal.h>
#include <sys/prctl.h>

#include "victim.h"

int main(int argc, char** argv) {
  v_init(argc, argv);
  V_CHECK_SYS(prctl(PR_SET_PDEATHSIG, SIGWINCH, 0, 0, 0) == 0, "PR_SET_PDEATHSIG");
  V_CHECK_SYS(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, "PR_SET_CHILD_SUBREAPER");
  V_CHECK_SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS");

  v_ready();
  v_wait_go();

  int sig = -1, reaper = -1;
  V_CHECK_SYS(prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) == 0, "PR_GET_PDEATHSIG");
  if (sig != SIGWINCH) v_fail("pdeathsig is %d, expected %d (SIGWINCH)", sig, SIGWINCH);
  V_CHECK_SYS(prctl(PR_GET_CHILD_SUBREAPER, &reaper, 0, 0, 0) == 0, "PR_GET_CHILD_SUBREAPER");
  if (reaper != 1) v_fail("child subreaper flag is %d, expected 1", reaper);
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) v_fail("no_new_privs was lost");
  int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  if (dumpable != 1) v_fail("dumpable is %d, not 1", dumpable);
  v_pass();
}
