"""smtplib over implicit TLS: COUNT × the message in FILE on one connection (`sendmail`).

    python3 smtp_send.py HOST PORT CA_FILE USER RCPT COUNT FILE   (password in MAILCAT_PASSWORD)
"""
import os
import smtplib
import ssl
import sys

host, port, ca, user, rcpt, count, path = sys.argv[1:]
with open(path, "rb") as f:
    data = f.read()
s = smtplib.SMTP_SSL(host, int(port), context=ssl.create_default_context(cafile=ca))
s.login(user, os.environ["MAILCAT_PASSWORD"])
for _ in range(int(count)):
    s.sendmail(user, [rcpt], data)
s.quit()
print(f"messages={count} bytes={int(count) * len(data)}")
