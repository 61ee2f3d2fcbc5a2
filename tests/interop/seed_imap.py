#!/usr/bin/env python3
"""Put messages into a mailbox with IMAP APPEND over verified implicit TLS (the stock imaplib).

Usage: SEED_PASSWORD=... seed_imap.py HOST PORT CA_FILE USER MAILBOX FILE...
Each FILE is appended as it is (its bytes, CRLF line ends). Prints the server's replies.
"""
import imaplib
import os
import ssl
import sys

host, port, ca, user, mailbox, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
ctx = ssl.create_default_context(cafile=ca)
imap = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=30)
imap.login(user, os.environ["SEED_PASSWORD"])
for f in files:
    with open(f, "rb") as fh:
        typ, data = imap.append(mailbox, None, None, fh.read())
    if typ != "OK":
        sys.exit(f"APPEND {f} failed: {typ} {data}")
    print(f"appended {f}: {data}")
imap.logout()
