// System V shared memory: segment S1 (a key, 3 pages + 100 bytes, mode 0640) attached twice,
// once read-only with its first page unmapped again (the vma starts at offset 4096); segment S2 (IPC_PRIVATE) attached once and removed (IPC_RMID) while attached.
// After a restore both have their ids, S1 its key, size, mode and two attaches, S2 is still
// marked removed; contents are back and each segment's attaches share. At the end S1 is
// removed (the restored process, or in leave-running mode the original, which finishes first:
// then the restore creates the segment again under the same id).
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#include "victim.h"

#define S1_SIZE (3 * V_PAGE + 100)
#define S2_SIZE (2 * V_PAGE)

static struct shmid_ds stat_of(int id, const char* what) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) v_fail("%s: IPC_STAT of id %d: %s", what, id, strerror(errno));
  return ds;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  key_t key = ftok(v_workdir, 'c');
  V_CHECK_SYS(key != -1, "ftok");
  int old = shmget(key, 0, 0);
  if (old >= 0) shmctl(old, IPC_RMID, NULL);  // from an earlier run that did not finish
  int s1 = shmget(key, S1_SIZE, IPC_CREAT | IPC_EXCL | 0640);
  V_CHECK_SYS(s1 >= 0, "shmget S1");
  char* a = shmat(s1, NULL, 0);
  char* b = shmat(s1, NULL, SHM_RDONLY);
  V_CHECK_SYS(a != (void*)-1 && b != (void*)-1, "shmat S1");
  v_fill(a, 3 * V_PAGE, 91);
  memset(a + 3 * V_PAGE, 'z', 100);

  int s2 = shmget(IPC_PRIVATE, S2_SIZE, IPC_CREAT | 0600);
  V_CHECK_SYS(s2 >= 0, "shmget S2");
  char* c = shmat(s2, NULL, 0);
  V_CHECK_SYS(c != (void*)-1, "shmat S2");
  v_fill(c + V_PAGE, V_PAGE, 92);  // page 0 stays a hole
  V_CHECK_SYS(shmctl(s2, IPC_RMID, NULL) == 0, "IPC_RMID S2");
  // Last, so that no later mapping lands in the hole.
  V_CHECK_SYS(munmap(b, V_PAGE) == 0, "munmap first page of the read-only attach");

  v_ready();
  v_wait_go();

  struct shmid_ds d1 = stat_of(s1, "S1");
  if (d1.shm_perm.__key != key) v_fail("S1: key %#x, expected %#x", d1.shm_perm.__key, key);
  if (d1.shm_segsz != S1_SIZE) v_fail("S1: size %zu, expected %lu", d1.shm_segsz, (unsigned long)S1_SIZE);
  if ((d1.shm_perm.mode & 0777) != 0640) v_fail("S1: mode %o", d1.shm_perm.mode & 0777);
  if (d1.shm_nattch != 2) v_fail("S1: %lu attaches, expected 2", (unsigned long)d1.shm_nattch);
  if (shmget(key, 0, 0) != s1) v_fail("S1: the key no longer finds id %d", s1);
  v_expect_pattern("S1, read-write attach", a, 3 * V_PAGE, 91, 0);
  v_expect_pattern("S1, read-only attach", b + V_PAGE, 2 * V_PAGE, 91, V_PAGE / 8);
  for (int i = 0; i < 100; i++)
    if (b[3 * V_PAGE + i] != 'z') v_fail("S1: tail byte %d differs", i);
  a[V_PAGE + 10] ^= 1;
  if (b[V_PAGE + 10] != a[V_PAGE + 10]) v_fail("S1: the attaches do not share");
  a[V_PAGE + 10] ^= 1;
  // The read-only attach stays read-only, and its first page stays unmapped.
  unsigned char vec;
  if (mincore(b + V_PAGE, V_PAGE, &vec) != 0) v_fail("S1: read-only attach is not mapped");
  if (mincore(b, V_PAGE, &vec) == 0 || errno != ENOMEM)
    v_fail("S1: the unmapped first page of the read-only attach is mapped");
  if (mprotect(b + V_PAGE, V_PAGE, PROT_READ | PROT_WRITE) == 0)
    v_fail("S1: read-only attach is writable");

  struct shmid_ds d2 = stat_of(s2, "S2");
  if (!(d2.shm_perm.mode & SHM_DEST)) v_fail("S2 is no longer marked removed");
  if (d2.shm_nattch != 1) v_fail("S2: %lu attaches, expected 1", (unsigned long)d2.shm_nattch);
  v_expect_zero("S2, page 0", c, V_PAGE);
  v_expect_pattern("S2, page 1", c + V_PAGE, V_PAGE, 92, 0);
  V_CHECK_SYS(shmctl(s1, IPC_RMID, NULL) == 0, "remove S1");
  v_pass();
}
