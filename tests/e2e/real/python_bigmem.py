"""A real program for the e2e suite: python3 holding 256 MiB of pseudo-random data.

Follows the victim protocol (see ../victims/victim.h): python_bigmem.py <workdir>; writes its pid
to <workdir>/ready, waits for <workdir>/go, then checks the SHA-256 of its data against the one
computed before the checkpoint and prints PASS or FAIL.
"""
import hashlib
import os
import random
import sys
import time

SIZE = 256 << 20


def main() -> int:
    workdir = sys.argv[1]
    rng = random.Random(20240607)
    block = rng.randbytes(1 << 20)
    data = bytearray(SIZE)
    # 256 distinct 1 MiB blocks: the seed block with every byte shifted by the block's index.
    for i in range(SIZE >> 20):
        shift = bytes((b + i) & 0xFF for b in range(256))
        data[i << 20 : (i + 1) << 20] = block.translate(shift)
    digest = hashlib.sha256(data).hexdigest()

    go = os.path.join(workdir, "go")
    tmp = os.path.join(workdir, "ready.tmp")
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(tmp, os.path.join(workdir, "ready"))
    while not os.path.exists(go):
        time.sleep(0.002)

    now = hashlib.sha256(data).hexdigest()
    if now != digest:
        print(f"FAIL: SHA-256 of the 256 MiB buffer is {now}, was {digest}", flush=True)
        return 1
    print("PASS", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
