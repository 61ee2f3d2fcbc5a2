#!/usr/bin/env python3
"""Seed a lab mailbox quickly and deterministically (for tests and benchmarks).

    lab.sh seed [DIR] --user bench4k@example.test --count 2000 --size 4096 --reset
    lab.sh seed [DIR] --user bench1m@example.test --count 20 --size 1048576 --reset
    lab.sh seed [DIR] --user alice@example.test --count 3 --size 5000000 --start-index 1001

--size is the size in bytes of each message as IMAP and POP3 serve it (CRLF line ends).
Up to 64 KiB a message is text/plain; bigger ones are multipart/mixed with a base64
attachment, as real large mails are. The content derives from user, index and size only,
so the same arguments give byte-identical messages (a delivery by LMTP adds a Received
header). For a mailbox with thousands of small and a few large messages, run twice, the
second time with --start-index past the first batch.

--via maildir (default) writes the files straight into Maildir/cur as the mail user, named
so that UIDs follow the index, then runs one `doveadm force-resync`: about 5000 msg/s.
--via lmtp delivers through Dovecot's LMTP listener, the path Postfix uses: ~200 msg/s,
slower as the mailbox grows.
--reset expunges the user's INBOX first.
"""
import argparse
import base64
import hashlib
import os
import smtplib
import subprocess
import sys
import time

import labenv

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
         "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
         "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur").split()


def prng_bytes(seed: str, n: int) -> bytes:
    """Deterministic pseudo-random bytes (a SHAKE-256 stream)."""
    return hashlib.shake_256(seed.encode()).digest(n)


def text_lines(seed: str, nbytes: int):
    """CRLF-terminated lines of words (at most 72 characters) totalling exactly nbytes."""
    rnd = prng_bytes(seed, max(64, nbytes // 3))
    i, total = 0, 0
    while total < nbytes:
        line, width = [], 0
        while True:
            w = WORDS[rnd[i % len(rnd)] % len(WORDS)]
            i += 1
            if width + len(w) + 1 > 72:
                break
            line.append(w)
            width += len(w) + 1
        s = " ".join(line)
        room = nbytes - total - 2
        if room < len(s):
            s = s[:max(room, 0)]
        yield s + "\r\n"
        total += len(s) + 2


def build_message(user: str, idx: int, size: int) -> bytes:
    domain = user.split("@")[1]
    hdr = (f"Return-Path: <seeder@client.test>\r\n"
           f"From: Seeder <seeder@client.test>\r\n"
           f"To: <{user}>\r\n"
           f"Subject: seed message {idx} ({size} bytes)\r\n"
           f"Message-ID: <seed-{idx:06d}-{size}@{domain}>\r\n"
           f"Date: Mon, 01 Jan 2024 {idx // 3600 % 24:02d}:{idx // 60 % 60:02d}:{idx % 60:02d} +0000\r\n"
           f"MIME-Version: 1.0\r\n")
    if size <= 65536:
        hdr += "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        body = "".join(text_lines(f"{user}/{idx}", max(size - len(hdr), 16)))
        return (hdr + body).encode()
    boundary = f"=_seed_{idx:06d}"
    hdr += f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    part1_hdr = f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    part2_hdr = (f"--{boundary}\r\nContent-Type: application/octet-stream; name=\"blob{idx}.bin\"\r\n"
                 f"Content-Transfer-Encoding: base64\r\n"
                 f"Content-Disposition: attachment; filename=\"blob{idx}.bin\"\r\n\r\n")
    trailer = f"--{boundary}--\r\n"
    fixed = len(hdr) + len(part1_hdr) + len(part2_hdr) + len(trailer)
    raw_len = ((size - fixed - 1024) // 78) * 57   # a 76-character base64 line + CRLF carries 57 bytes
    enc = base64.b64encode(prng_bytes(f"{user}/{idx}/blob", raw_len)).decode()
    lines = "".join(enc[i:i + 76] + "\r\n" for i in range(0, len(enc), 76))
    # The text part takes up the rest, so the message is exactly `size` bytes.
    part1 = part1_hdr + "".join(text_lines(f"{user}/{idx}/intro", size - fixed - len(lines)))
    return (hdr + part1 + part2_hdr + lines + trailer).encode()


def doveadm(env, *args, **kw):
    r = subprocess.run(["doveadm", "-c", env["DOVECOT_CONF"], *args], capture_output=True, **kw)
    if r.returncode != 0:
        sys.exit(f"seed: doveadm {' '.join(args)} failed ({r.returncode}): {r.stderr.decode().strip()}"
                 f"\n(read {env['LOG_DIR']}/dovecot.log)")
    return r.stdout.decode()


def seed_maildir(env, a):
    """Drop files into Maildir/cur, then let Dovecot index them in one go."""
    uid = int(doveadm(env, "user", "-f", "uid", a.user).split()[0])
    gid = int(doveadm(env, "user", "-f", "gid", a.user).split()[0])
    home = doveadm(env, "user", "-f", "home", a.user).strip()
    maildir = os.path.join(home, "Maildir")
    for d in (os.path.dirname(home), home, maildir, *(os.path.join(maildir, x) for x in ("cur", "new", "tmp"))):
        if not os.path.isdir(d):
            os.mkdir(d, 0o700)
            os.chown(d, uid, gid)
    cur = os.path.join(maildir, "cur")
    base = 1_700_000_000                   # Dovecot gives new files UIDs in name (time) order
    total = 0
    for i in range(a.start_index, a.start_index + a.count):
        msg = build_message(a.user, i, a.size)
        total += len(msg)
        lf = msg.replace(b"\r\n", b"\n")   # Maildir stores LF; S= and W= are the LF and CRLF sizes
        name = f"{base + i}.M{i:06d}P{os.getpid()}.seed,S={len(lf)},W={len(msg)}:2,"
        path = os.path.join(cur, name)
        with open(path, "wb") as f:
            f.write(lf)
        os.chown(path, uid, gid)
    doveadm(env, "force-resync", "-u", a.user, "INBOX")
    return total


def seed_lmtp(env, a):
    total = 0
    lm = smtplib.LMTP(env["HOST"], int(env["LMTP_PORT"]), local_hostname="seeder.test", timeout=60)
    for i in range(a.start_index, a.start_index + a.count):
        msg = build_message(a.user, i, a.size)
        total += len(msg)
        refused = lm.sendmail("seeder@client.test", [a.user], msg)
        if refused:
            sys.exit(f"seed: LMTP refused {a.user}: {refused}")
    lm.quit()
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", required=True, help="the lab's env file (DIR/lab.env)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--reset", action="store_true", help="expunge the INBOX first")
    ap.add_argument("--via", choices=("maildir", "lmtp"), default="maildir")
    ap.add_argument("--start-index", type=int, default=1)
    a = ap.parse_args()
    if a.count < 0 or a.size < 1 or a.start_index < 0:
        ap.error("--count must be >= 0, --size >= 1, --start-index >= 0")
    env = labenv.load(a.env)
    if a.reset:
        doveadm(env, "expunge", "-u", a.user, "mailbox", "INBOX", "all")
    t0 = time.perf_counter()
    total = seed_maildir(env, a) if a.via == "maildir" else seed_lmtp(env, a)
    dt = time.perf_counter() - t0
    out = doveadm(env, "-f", "flow", "mailbox", "status", "-u", a.user, "messages", "INBOX")
    n = int(out.split("messages=")[1].split()[0])
    print(f"seeded {a.count} x {a.size} B ({total / 1e6:.1f} MB) into {a.user} via {a.via} "
          f"in {dt:.2f} s ({a.count / max(dt, 1e-9):.0f} msg/s); INBOX now has {n} messages")


if __name__ == "__main__":
    main()
