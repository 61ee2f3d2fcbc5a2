"""The plain script of issue 12: poplib, RETR of each message, one file each, no fsync.

    python3 pop3_fetch.py HOST PORT CA_FILE USER OUT_DIR     (password in MAILCAT_PASSWORD)
"""
import os
import poplib
import ssl
import sys

host, port, ca, user, out = sys.argv[1:]
p = poplib.POP3_SSL(host, int(port), context=ssl.create_default_context(cafile=ca))
p.user(user)
p.pass_(os.environ["MAILCAT_PASSWORD"])
n = size = 0
for i in range(1, p.stat()[0] + 1):
    lines = p.retr(i)[1]
    data = b"\r\n".join(lines) + b"\r\n"
    n += 1
    size += len(data)
    with open(os.path.join(out, f"{i}.eml"), "wb") as f:
        f.write(data)
p.quit()
print(f"messages={n} bytes={size}")
