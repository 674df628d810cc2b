#!/usr/bin/env python3
"""memfd_census.py PID... - what the engine's memfds hold (bench/linux density).

For every distinct memfd the processes PID... hold open (the engine's store
and the domains' home files), read each allocated page (SEEK_DATA and
SEEK_HOLE skip the holes) and hash it.  Prints one line of key=value:

  memfd_pages      allocated pages, all memfds
  memfd_zero       of them, pages of zeros
  memfd_distinct   distinct contents among the non-zero pages
  memfd_dup        copies beyond the first of a content (non-zero pages
                   - distinct): what one copy per content would save
  home_pages, store_pages, other_pages
                   allocated pages by memfd (named foldvm-home-*,
                   foldvm-store*, anything else)
  dup_home, dup_store
                   the repeated copies (memfd_dup) by where they lie: the
                   first copy of a content counts as held, the others as
                   repeated, home before store
  rep_2, rep_3_8, rep_9_64, rep_65
                   contents held that many times (2, 3-8, 9-64, 65 or more)

KSM keeps one copy per content (its pages_shared); this says how far the
engine's memfds are from that, and why (zeros, repeated contents).
"""
import hashlib
import os
import sys

PAGE = 4096


def memfds(pids):
    seen = {}
    for pid in pids:
        d = "/proc/%s/fd" % pid
        try:
            fds = os.listdir(d)
        except OSError:
            continue
        for fd in fds:
            path = os.path.join(d, fd)
            try:
                target = os.readlink(path)
                st = os.stat(path)
            except OSError:
                continue
            if not target.startswith("/memfd:"):
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen[key] = (path, target[len("/memfd:"):].split(" (")[0])
    return list(seen.values())


def pages_of(path):
    """Yield each allocated page's bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        off = 0
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                return              # ENXIO: no data after off
            end = os.lseek(fd, start, os.SEEK_HOLE)
            pos = start - start % PAGE
            while pos < end:
                yield os.pread(fd, PAGE, pos)
                pos += PAGE
            off = end
    finally:
        os.close(fd)


def main(pids):
    total = zero = 0
    by = {"home": 0, "store": 0, "other": 0}
    dup = {"home": 0, "store": 0, "other": 0}
    copies = {}
    order = {"home": 0, "store": 1, "other": 2}
    fds = sorted(memfds(pids), key=lambda f: order[kind_of(f[1])])
    for path, name in fds:
        kind = kind_of(name)
        for page in pages_of(path):
            total += 1
            by[kind] += 1
            if not page.strip(b"\0"):
                zero += 1
                continue
            h = hashlib.blake2b(page, digest_size=16).digest()
            if h in copies:
                dup[kind] += 1
            copies[h] = copies.get(h, 0) + 1
    distinct = len(copies)
    rep = [0, 0, 0, 0]
    for n in copies.values():
        if n >= 2:
            rep[0 if n == 2 else 1 if n <= 8 else 2 if n <= 64 else 3] += 1
    print("memfd_pages=%d memfd_zero=%d memfd_distinct=%d memfd_dup=%d "
          "home_pages=%d store_pages=%d other_pages=%d dup_home=%d "
          "dup_store=%d rep_2=%d rep_3_8=%d rep_9_64=%d rep_65=%d" %
          (total, zero, distinct, total - zero - distinct,
           by["home"], by["store"], by["other"], dup["home"], dup["store"],
           rep[0], rep[1], rep[2], rep[3]))


def kind_of(name):
    return ("home" if name.startswith("foldvm-home") else
            "store" if name.startswith("foldvm-store") else "other")


if __name__ == "__main__":
    if len(sys.argv) < 2 or not all(a.isdigit() for a in sys.argv[1:]):
        sys.exit(__doc__)
    main(sys.argv[1:])
