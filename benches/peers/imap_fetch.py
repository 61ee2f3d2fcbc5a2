"""The plain script of issue 12: imaplib, one `UID FETCH 1:*`, one file per message, no fsync.

    python3 imap_fetch.py HOST PORT CA_FILE USER OUT_DIR     (password in MAILCAT_PASSWORD)
"""
import imaplib
import os
import ssl
import sys

host, port, ca, user, out = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, os.environ["MAILCAT_PASSWORD"])
m.select("INBOX", readonly=True)
typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
assert typ == "OK", data
n = size = 0
for item in data:
    if isinstance(item, tuple):
        n += 1
        size += len(item[1])
        with open(os.path.join(out, f"{n}.eml"), "wb") as f:
            f.write(item[1])
m.logout()
print(f"messages={n} bytes={size}")
