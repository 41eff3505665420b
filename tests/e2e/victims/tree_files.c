// Open files shared across processes of a tree: a pipe from a child to the root with 64 KiB
// buffered, a file whose offset the root and a child share, a socketpair split between the root
// and a child with data queued both ways, and a pipeline (one child's stdout is another's stdin)
// with data in it. After the restore each must still be one object: the data comes out once, the
// offset moves for both, replies cross the socketpair.
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "victim.h"

#define PIPE_DATA (64 * 1024)
#define FILE_HEAD 100

static int wait_exit(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void read_exact(int fd, void* buf, size_t len, const char* what) {
  for (size_t got = 0; got < len;) {
    ssize_t n = read(fd, (char*)buf + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) v_fail("%s: read %zu of %zu bytes: %s", what, got, len, n ? strerror(errno) : "EOF");
    got += (size_t)n;
  }
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  static char data[PIPE_DATA];
  v_fill(data, sizeof data, 61);

  // 1. A pipe: the child writes 64 KiB and keeps the write end; the root keeps the read end.
  int p[2];
  V_CHECK_SYS(pipe(p) == 0, "pipe");
  V_CHECK_SYS(fcntl(p[1], F_SETPIPE_SZ, 2 * PIPE_DATA) >= 2 * PIPE_DATA, "F_SETPIPE_SZ");
  pid_t writer = fork();
  V_CHECK_SYS(writer >= 0, "fork");
  if (writer == 0) {
    close(p[0]);
    if (write(p[1], data, sizeof data) != (ssize_t)sizeof data) _exit(10);
    v_wait_go();
    if (write(p[1], "END", 3) != 3) _exit(11);
    _exit(0);
  }
  close(p[1]);

  // 2. A file offset shared by the root and a child.
  char path[PATH_MAX];
  v_path(path, "shared.dat");
  int file = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  V_CHECK_SYS(file >= 0, "open shared.dat");
  V_CHECK_SYS(write(file, data, FILE_HEAD) == FILE_HEAD, "write shared.dat");
  pid_t offsetter = fork();
  V_CHECK_SYS(offsetter >= 0, "fork");
  if (offsetter == 0) {
    v_wait_go();
    if (lseek(file, 0, SEEK_CUR) != FILE_HEAD) _exit(20);
    if (write(file, "child", 5) != 5) _exit(21);
    _exit(0);
  }

  // 3. A socketpair split between the root and a child, with a message queued each way.
  int sv[2];
  V_CHECK_SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0, "socketpair");
  pid_t peer = fork();
  V_CHECK_SYS(peer >= 0, "fork");
  if (peer == 0) {
    close(sv[0]);
    if (send(sv[1], "hi-root", 7, 0) != 7) _exit(30);
    v_wait_go();
    char buf[64];
    ssize_t n = recv(sv[1], buf, sizeof buf, 0);
    if (n != 15 || memcmp(buf, "hello-from-root", 15) != 0) _exit(31);
    if (send(sv[1], "ack", 3, 0) != 3) _exit(32);
    _exit(0);
  }
  close(sv[1]);
  V_CHECK_SYS(send(sv[0], "hello-from-root", 15, 0) == 15, "send");

  // 4. A pipeline: producer's stdout is consumer's stdin, a line already in the pipe.
  int pl[2];
  V_CHECK_SYS(pipe(pl) == 0, "pipe");
  pid_t producer = fork();
  V_CHECK_SYS(producer >= 0, "fork");
  if (producer == 0) {
    dup2(pl[1], 1);
    close(pl[0]);
    close(pl[1]);
    if (write(1, "first line\n", 11) != 11) _exit(40);
    v_wait_go();
    if (write(1, "second line\n", 12) != 12) _exit(41);
    _exit(0);
  }
  pid_t consumer = fork();
  V_CHECK_SYS(consumer >= 0, "fork");
  if (consumer == 0) {
    dup2(pl[0], 0);
    close(pl[0]);
    close(pl[1]);
    v_wait_go();
    char buf[23];
    for (size_t got = 0; got < sizeof buf;) {
      ssize_t n = read(0, buf + got, sizeof buf - got);
      if (n <= 0) _exit(50);
      got += (size_t)n;
    }
    if (memcmp(buf, "first line\nsecond line\n", 23) != 0) _exit(51);
    _exit(0);
  }
  close(pl[0]);
  close(pl[1]);

  // Ready once the pipe holds all the data and the child's message is queued.
  for (;;) {
    int queued = 0;
    V_CHECK_SYS(ioctl(p[0], FIONREAD, &queued) == 0, "FIONREAD");
    char c;
    if (queued == PIPE_DATA && recv(sv[0], &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1) break;
    usleep(1000);
  }
  v_ready();
  v_wait_go();

  static char got[PIPE_DATA + 3];
  read_exact(p[0], got, sizeof got, "pipe from the child");
  if (memcmp(got, data, PIPE_DATA) != 0) v_fail("pipe data differs");
  if (memcmp(got + PIPE_DATA, "END", 3) != 0) v_fail("pipe: the child's later write is missing");
  char extra;
  if (read(p[0], &extra, 1) != 0) v_fail("pipe: more than was written (data put back twice?)");

  char buf[64];
  ssize_t n = recv(sv[0], buf, sizeof buf, 0);
  if (n != 7 || memcmp(buf, "hi-root", 7) != 0) v_fail("socketpair: the child's message is lost");
  n = recv(sv[0], buf, sizeof buf, 0);
  if (n != 3 || memcmp(buf, "ack", 3) != 0) v_fail("socketpair: no ack from the child");

  int st;
  if ((st = wait_exit(writer)) != 0) v_fail("pipe writer: status %d", st);
  if ((st = wait_exit(offsetter)) != 0) v_fail("file child: status %d", st);
  if ((st = wait_exit(peer)) != 0) v_fail("socket child: status %d", st);
  if ((st = wait_exit(producer)) != 0) v_fail("producer: status %d", st);
  if ((st = wait_exit(consumer)) != 0) v_fail("consumer: status %d", st);
  off_t off = lseek(file, 0, SEEK_CUR);
  if (off != FILE_HEAD + 5) v_fail("shared offset is %ld, expected %d", (long)off, FILE_HEAD + 5);
  V_CHECK_SYS(ftruncate(file, FILE_HEAD) == 0, "ftruncate");  // as it was, for the next run
  V_CHECK_SYS(lseek(file, FILE_HEAD, SEEK_SET) == FILE_HEAD, "lseek");
  v_pass();
}
