#!/usr/bin/env python3
"""The file system's own cost of what a fetch into files does, with no network and no mail:
2,000 files of 4 KiB created, written and closed (what the Python peers do), and the same with
a Maildir's durable commit (written into tmp/, fdatasync'ed, renamed into new/, as mailcat's
fetch does). Prints each variant's wall time and the process's kernel (sys) and user CPU.

Usage: python3 benches/peers/fs_floor.py DIR [COUNT]   (DIR on the file system to measure)
"""
import os
import resource
import shutil
import sys
import time


def run(base, mode, count, data):
    root = os.path.join(base, f"fs-floor-{os.getpid()}-{mode}")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "tmp"))
    os.makedirs(os.path.join(root, "new"))
    os.sync()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for i in range(count):
        name = f"1796498780.M511154P{os.getpid()}Q{i}.host"
        if mode == "in place":
            fd = os.open(os.path.join(root, "new", name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            os.close(fd)
        else:
            tmp = os.path.join(root, "tmp", name)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            os.fdatasync(fd)
            os.close(fd)
            os.rename(tmp, os.path.join(root, "new", name))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    shutil.rmtree(root)
    print(f"{mode:>24}: {count} files, wall {1000 * wall:7.1f} ms, "
          f"sys {1000 * (after.ru_stime - before.ru_stime):7.1f} ms, "
          f"user {1000 * (after.ru_utime - before.ru_utime):6.1f} ms")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    base = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) == 3 else 2000
    data = b"x" * 4096
    for _ in range(3):
        for mode in ("in place", "tmp/, fdatasync, rename"):
            run(base, mode, count, data)


if __name__ == "__main__":
    main()
