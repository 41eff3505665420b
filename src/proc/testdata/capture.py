#!/usr/bin/python3
# Regenerates the /proc fixtures in this folder from a live python3 process that sets up the odd
# cases the parsers must handle: a mapped file whose name has spaces and a newline, a mapped file
# that was unlinked, a named anonymous mapping, threads, and fds of several anon-inode kinds.
# Run as: python3 capture.py  (writes next to itself; the numbers in the files will differ).
import ctypes, mmap, os, select, signal, threading, time

here = os.path.dirname(os.path.abspath(__file__))
libc = ctypes.CDLL(None, use_errno=True)

def save(name, src):
    with open(src, 'rb') as f:
        data = f.read()
    with open(os.path.join(here, name), 'wb') as f:
        f.write(data)

tmp = '/tmp/cryo-fixture'
os.makedirs(tmp, exist_ok=True)
odd = os.path.join(tmp, 'with space\nand newline')
gone = os.path.join(tmp, 'gone soon')
maps_keep = []
for path in (odd, gone):
    with open(path, 'wb') as f:
        f.write(b'x' * 8192)
    fd = os.open(path, os.O_RDWR)
    maps_keep.append(mmap.mmap(fd, 8192, mmap.MAP_SHARED))
    os.close(fd)
os.unlink(gone)

# A memfd mapping shows as "/memfd:NAME (deleted)".
mfd = os.memfd_create('cryo fixture')
os.ftruncate(mfd, 4096)
maps_keep.append(mmap.mmap(mfd, 4096, mmap.MAP_SHARED))

# A named anonymous mapping (PR_SET_VMA = 0x53564d41, PR_SET_VMA_ANON_NAME = 0). Kernels built
# without CONFIG_ANON_VMA_NAME (like the one the fixtures were captured on) refuse it with EINVAL;
# the parser tests cover "[anon:NAME]" with hand-written lines.
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
addr = libc.mmap(None, 3 * 4096, 3, 0x22, -1, 0)
libc.prctl(0x53564d41, 0, ctypes.c_void_p(addr), 3 * 4096, ctypes.c_char_p(b'cryo fixture'))
ctypes.memset(addr, 1, 4096)

# Threads, a umask, blocked and caught signals.
stop = threading.Event()
threads = [threading.Thread(target=stop.wait) for _ in range(2)]
for t in threads:
    t.start()
os.umask(0o027)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
signal.signal(signal.SIGUSR1, lambda *a: None)

# Anon-inode fds whose fdinfo has extra lines.
efd = os.eventfd(5)
ep = select.epoll()
ep.register(efd, select.EPOLLIN)
libc.inotify_init1.restype = ctypes.c_int
ino = libc.inotify_init1(0)
libc.inotify_add_watch(ino, tmp.encode(), 0x100)  # IN_CREATE
tfd = libc.timerfd_create(1, 0)

save('python3.maps', '/proc/self/maps')
save('python3.smaps', '/proc/self/smaps')
save('python3.status', '/proc/self/status')
save('python3.stat', '/proc/self/stat')
save('fdinfo.regular', '/proc/self/fdinfo/%d' % os.open(__file__, os.O_RDONLY | os.O_APPEND))
save('fdinfo.eventfd', '/proc/self/fdinfo/%d' % efd)
save('fdinfo.epoll', '/proc/self/fdinfo/%d' % ep.fileno())
save('fdinfo.inotify', '/proc/self/fdinfo/%d' % ino)
save('fdinfo.timerfd', '/proc/self/fdinfo/%d' % tfd)

stop.set()
for t in threads:
    t.join()
os.unlink(odd)
os.rmdir(tmp)
