#!/usr/bin/env python3
"""Self-check of a running mailcat lab with stock tools only: openssl s_client, curl, and
Python's ssl/smtplib/imaplib/poplib.

    check.py DIR/lab.env          (usually: tests/lab/lab.sh check [DIR])

Checks that every endpoint answers with the security it promises (implicit TLS, or a
plaintext greeting that offers STARTTLS/STLS), that the certificate verifies against the
lab CA for localhost/127.0.0.1/127.0.0.2 and fails without it, that on the strict host no
credentials are accepted before STARTTLS/STLS, that the same password logs in on IMAP,
POP3 and SMTP (also the tricky one), that wrong passwords are refused, that mail submitted
on 587 and 465 arrives over IMAP and POP3 (and outside recipients land in outbound@), and
that OAuth2 tokens work on IMAP, POP3 and SMTP. One line per check; the last line is
"N passed, N failed"; exit status 1 if anything failed.
"""
import base64
import email
import email.utils
import imaplib
import os
import poplib
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

import labenv
from mint_token import mint

E = labenv.load(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MAILCAT_LAB_DIR", "."))
H, STRICT, NAME, CA = E["HOST"], E["STRICT_HOST"], E["TLS_NAME"], E["CA_FILE"]
P = {k: int(E[f"{k}_PORT"]) for k in ("IMAPS", "IMAP", "POP3S", "POP3", "SUBMISSION", "SUBMISSIONS", "LMTP")}
ALICE, ALICE_PW = E["USER"], E["PASSWORD"]
BOB, BOB_PW = E["USER2"], E["PASSWORD2"]
TRICKY, TRICKY_PW = E["TRICKY_USER"], E["TRICKY_PASSWORD"]
OUTBOUND, OUTBOUND_PW = E["OUTBOUND_USER"], E["OUTBOUND_PASSWORD"]
OAUTH, KEY = E["OAUTH2_USER"], E["OAUTH2_HS256_KEY"]
TIMEOUT = 10
CTX = ssl.create_default_context(cafile=CA)     # chain and host name (or IP) verified
CTX.minimum_version = ssl.TLSVersion.TLSv1_2
TAG = uuid.uuid4().hex[:8]
state = {}
results = []


def check(name, fn):
    t0 = time.perf_counter()
    try:
        detail, ok = fn(), True
    except Exception as e:  # noqa: BLE001 -- report every failure and go on
        detail, ok = f"{type(e).__name__}: {e}", False
    results.append(ok)
    ms = (time.perf_counter() - t0) * 1000
    print(f"{'PASS' if ok else 'FAIL'}  {name}  ({ms:.0f} ms){'  ' + str(detail) if detail else ''}", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


# --------------------------------------------------------------------------- helpers
def s_client(host, port, starttls=None, send=b"", ca=CA, name=NAME):
    """openssl s_client with verification; returns (exit code, server bytes, stderr)."""
    cmd = ["openssl", "s_client", "-connect", f"{host}:{port}", "-servername", name,
           "-verify_hostname", name, "-verify_return_error", "-quiet"]
    if ca:
        cmd += ["-CAfile", ca]
    if starttls:
        cmd += ["-starttls", starttls]
    r = subprocess.run(cmd, input=send, capture_output=True, timeout=TIMEOUT)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def plain_greeting(host, port):
    """Connect without TLS, say a line, return whatever comes back (b"" on EOF)."""
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(b"a1 CAPABILITY\r\n")
        try:
            return s.recv(200)
        except (ConnectionResetError, socket.timeout):
            return b""


def implicit_tls(port, greeting, send):
    def run():
        got = plain_greeting(H, port)
        expect(not got.startswith((b"* OK", b"+OK", b"220")),
               f"port {port} greets in plaintext ({got[:30]!r}); expected TLS from the first byte")
        for host in (H, STRICT):
            rc, out, err = s_client(host, port, send=send)
            expect(rc == 0 and out.startswith(greeting),
                   f"TLS to {host}:{port}: rc {rc}, server said {out[:60]!r}, {err.strip()[-200:]}")
        return f"TLS first, verified for {NAME} on {H} and {STRICT}; greeting {greeting!r}"
    return run


def starttls_port(port, proto, greeting, capa_cmd, capa_word, send):
    def run():
        with socket.create_connection((STRICT, port), timeout=TIMEOUT) as s:
            f = s.makefile("rb")
            first = f.readline()
            expect(first.startswith(greeting), f"plaintext greeting on {port}: {first!r}")
            s.sendall(capa_cmd)
            caps = b""
            for _ in range(30):
                line = f.readline()
                caps += line
                if not line or line.startswith((b"a1 ", b".", b"250 ")):
                    break
            expect(capa_word in caps, f"{capa_word!r} not offered in plaintext on {port}: {caps!r}")
        rc, out, err = s_client(STRICT, port, starttls=proto, send=send)
        expect(rc == 0, f"{proto} STARTTLS upgrade on {STRICT}:{port} failed: rc {rc}: {err.strip()[-200:]}")
        return f"plaintext greeting offers {capa_word.decode()}; upgrade verified for {NAME}"
    return run


def make_msg(frm, to, subject, body, extra_to=()):
    mid = email.utils.make_msgid(domain="client.test")
    raw = (f"From: {frm}\r\nTo: {', '.join([to, *extra_to])}\r\nSubject: {subject}\r\n"
           f"Message-ID: {mid}\r\nDate: {email.utils.formatdate()}\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
    return mid, raw.encode()


def imap_wait_for(m, mid, timeout=10.0):
    """Poll (NOOP + UID SEARCH) until the Message-ID shows up; return its UID."""
    deadline = time.monotonic() + timeout
    while True:
        m.noop()
        typ, data = m.uid("SEARCH", None, "HEADER", "Message-ID", f'"{mid}"')
        expect(typ == "OK", f"SEARCH failed: {data}")
        if data[0]:
            return int(data[0].split()[-1])
        expect(time.monotonic() < deadline, f"{mid} not delivered within {timeout} s (read the lab's postfix.log)")
        time.sleep(0.02)


def imaps(user, pw):
    m = imaplib.IMAP4_SSL(H, P["IMAPS"], ssl_context=CTX, timeout=TIMEOUT)
    m.login(user, pw)
    return m


def refused(fn, exc):
    try:
        fn()
    except exc as e:
        return str(e)[:80]
    raise AssertionError("accepted")


def xoauth2(user, token):
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


# --------------------------------------------------------------------------- checks
def tls_without_ca():
    rc, _, err = s_client(H, P["IMAPS"], ca=None, send=b"a LOGOUT\r\n")
    expect(rc != 0 and "verify" in err.lower(), f"openssl without the CA: rc {rc}: {err.strip()[-200:]}")
    rc, _, err = s_client(H, P["SUBMISSION"], starttls="smtp", ca=None, send=b"QUIT\r\n")
    expect(rc != 0, "STARTTLS on submission verified without the CA")
    rc, _, err = s_client(H, P["IMAPS"], name="mail.example.com", send=b"a LOGOUT\r\n")
    expect(rc != 0, "certificate accepted for the wrong name mail.example.com")
    try:
        imaplib.IMAP4_SSL(H, P["IMAPS"], ssl_context=ssl.create_default_context(), timeout=TIMEOUT)
    except ssl.SSLCertVerificationError as e:
        return f"unknown CA refused by openssl and python ({e.verify_message}); wrong name refused"
    raise AssertionError("python verified the certificate with the system CAs only")


def strict_no_auth_before_tls():
    m = imaplib.IMAP4(STRICT, P["IMAP"], timeout=TIMEOUT)
    expect("LOGINDISABLED" in m.capabilities and "STARTTLS" in m.capabilities, f"IMAP caps: {m.capabilities}")
    refused(lambda: m.login(ALICE, ALICE_PW), imaplib.IMAP4.error)
    m.shutdown()
    p = poplib.POP3(STRICT, P["POP3"], timeout=TIMEOUT)
    caps = p.capa()
    expect("STLS" in caps and "USER" not in caps and not caps.get("SASL"), f"POP3 CAPA: {caps}")
    refused(lambda: (p.user(ALICE), p.pass_(ALICE_PW)), poplib.error_proto)
    p.close()
    s = smtplib.SMTP(STRICT, P["SUBMISSION"], local_hostname="client.test", timeout=TIMEOUT)
    code, caps = s.ehlo()
    expect(b"STARTTLS" in caps and b"AUTH" not in caps, f"SMTP EHLO before STARTTLS: {caps!r}")
    code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode())
    expect(code >= 500, f"AUTH before STARTTLS answered {code} {msg!r}")
    code, msg = s.mail(ALICE)
    expect(code == 530, f"MAIL before STARTTLS answered {code} {msg!r}")
    s.close()
    return "IMAP LOGINDISABLED, POP3 no USER/SASL, SMTP no AUTH and 530 -- all before TLS"


def same_password_everywhere():
    for user, pw in ((ALICE, ALICE_PW), (TRICKY, TRICKY_PW)):
        imaps(user, pw).logout()
        m = imaplib.IMAP4(STRICT, P["IMAP"], timeout=TIMEOUT)
        m.starttls(ssl_context=CTX)
        m.authenticate("PLAIN", lambda _, u=user, p=pw: f"\0{u}\0{p}".encode())
        m.logout()
        p = poplib.POP3_SSL(H, P["POP3S"], context=CTX, timeout=TIMEOUT)
        p.user(user)
        p.pass_(pw)
        p.quit()
        p = poplib.POP3(STRICT, P["POP3"], timeout=TIMEOUT)
        p.stls(context=CTX)
        p.user(user)
        p.pass_(pw)
        p.quit()
        s = smtplib.SMTP(STRICT, P["SUBMISSION"], local_hostname="client.test", timeout=TIMEOUT)
        s.starttls(context=CTX)
        s.login(user, pw)
        s.quit()
        s = smtplib.SMTP_SSL(H, P["SUBMISSIONS"], local_hostname="client.test", context=CTX, timeout=TIMEOUT)
        s.user, s.password = user, pw
        code, msg = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        expect(code == 235, f"AUTH LOGIN on 465: {code} {msg!r}")
        s.quit()
    return f"{ALICE} and {TRICKY} (password {TRICKY_PW!r}) on IMAPS, IMAP+STARTTLS, POP3S, POP3+STLS, 587, 465"


def wrong_password_refused():
    m = imaplib.IMAP4_SSL(H, P["IMAPS"], ssl_context=CTX, timeout=TIMEOUT)
    e1 = refused(lambda: m.login(ALICE, BOB_PW), imaplib.IMAP4.error)
    expect("AUTHENTICATIONFAILED" in e1, e1)
    m.shutdown()
    p = poplib.POP3_SSL(H, P["POP3S"], context=CTX, timeout=TIMEOUT)
    refused(lambda: (p.user(ALICE), p.pass_("wrong")), poplib.error_proto)
    p.close()
    s = smtplib.SMTP(H, P["SUBMISSION"], local_hostname="client.test", timeout=TIMEOUT)
    s.starttls(context=CTX)
    s.ehlo()
    code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{ALICE}\0wrong".encode()).decode())
    expect(code == 535, f"SMTP AUTH with a wrong password answered {code} {msg!r}")
    s.quit()
    return "IMAP AUTHENTICATIONFAILED, POP3 -ERR, SMTP 535"


def submit_587():
    s = smtplib.SMTP(H, P["SUBMISSION"], local_hostname="client.test", timeout=TIMEOUT)
    s.starttls(context=CTX)
    s.ehlo()
    s.mail(ALICE)
    code, msg = s.rcpt(BOB)
    expect(code >= 500, f"RCPT without AUTH answered {code} {msg!r}")
    s.rset()
    s.login(ALICE, ALICE_PW)
    s.mail(ALICE)
    code, msg = s.rcpt("nobody@example.test")
    expect(code == 550, f"unknown local recipient answered {code} {msg!r}")
    s.rset()
    mid, raw = make_msg(ALICE, BOB, f"lab check 587 {TAG}", "hello over 587 STARTTLS",
                        extra_to=["someone@elsewhere.invalid"])
    bad = s.sendmail(ALICE, [BOB, "someone@elsewhere.invalid"], raw)
    expect(not bad, f"refused recipients: {bad}")
    s.quit()
    state["mid587"] = mid
    mid, raw = make_msg(ALICE, ALICE, f"lab check 465 {TAG}", "hello over 465")
    s = smtplib.SMTP_SSL(H, P["SUBMISSIONS"], local_hostname="client.test", context=CTX, timeout=TIMEOUT)
    s.login(ALICE, ALICE_PW)
    s.sendmail(ALICE, [ALICE], raw)
    s.quit()
    state["mid465"] = mid
    return "587 and 465 accepted; no relay without AUTH; unknown local user 550"


def arrives_imap():
    expect("mid587" in state, "nothing was submitted")
    t0 = time.perf_counter()
    m = imaps(BOB, BOB_PW)
    m.select("INBOX", readonly=True)
    uid = imap_wait_for(m, state["mid587"])
    ms = (time.perf_counter() - t0) * 1000
    typ, data = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
    msg = email.message_from_bytes(data[0][1])
    expect(msg["Subject"] == f"lab check 587 {TAG}", msg["Subject"])
    typ, data = m.list()
    names = b" ".join(data)
    for special in (b"\\Sent", b"\\Trash", b"\\Drafts", b"\\Junk", b"\\Archive"):
        expect(special in names, f"special-use {special!r} missing in LIST: {data}")
    m.logout()
    m = imaps(ALICE, ALICE_PW)
    m.select("INBOX", readonly=True)
    imap_wait_for(m, state["mid465"])
    m.logout()
    m = imaps(OUTBOUND, OUTBOUND_PW)
    m.select("INBOX", readonly=True)
    imap_wait_for(m, state["mid587"])
    m.logout()
    return f"bob has UID {uid} ({ms:.0f} ms); alice has the 465 message; outbound@ caught the outside recipient"


def arrives_pop3():
    expect("mid587" in state, "nothing was submitted")
    p = poplib.POP3(STRICT, P["POP3"], timeout=TIMEOUT)
    p.stls(context=CTX)
    p.user(BOB)
    p.pass_(BOB_PW)
    count, _ = p.stat()
    for i in range(count, 0, -1):
        if any(state["mid587"].encode() in ln for ln in p.top(i, 0)[1]):
            uidl = p.uidl(i).decode()
            p.quit()
            return f"message {i} of {count}, {uidl}"
    raise AssertionError("the submitted message is not in bob's POP3 maildrop")


def oauth2():
    tok = E["OAUTH2_TOKEN"]
    m = imaplib.IMAP4_SSL(H, P["IMAPS"], ssl_context=CTX, timeout=TIMEOUT)
    expect("AUTH=XOAUTH2" in m.capabilities and "AUTH=OAUTHBEARER" in m.capabilities, m.capabilities)
    m.authenticate("XOAUTH2", lambda _: xoauth2(OAUTH, tok).encode())
    m.logout()
    m = imaplib.IMAP4_SSL(H, P["IMAPS"], ssl_context=CTX, timeout=TIMEOUT)
    t = mint(KEY, ALICE)
    m.authenticate("OAUTHBEARER", lambda _: f"n,a={ALICE},\x01auth=Bearer {t}\x01\x01".encode())
    m.logout()
    m = imaplib.IMAP4_SSL(H, P["IMAPS"], ssl_context=CTX, timeout=TIMEOUT)
    refused(lambda: m.login(OAUTH, "anything"), imaplib.IMAP4.error)
    m.shutdown()
    m = imaplib.IMAP4_SSL(H, P["IMAPS"], ssl_context=CTX, timeout=TIMEOUT)
    expired = mint(KEY, OAUTH, -30)
    refused(lambda: m.authenticate("XOAUTH2", lambda _: xoauth2(OAUTH, expired).encode()), imaplib.IMAP4.error)
    m.shutdown()
    p = poplib.POP3_SSL(H, P["POP3S"], context=CTX, timeout=TIMEOUT)
    resp = p._shortcmd("AUTH XOAUTH2 " + base64.b64encode(xoauth2(OAUTH, tok).encode()).decode())
    expect(resp.startswith(b"+OK"), resp)
    p.quit()
    s = smtplib.SMTP(H, P["SUBMISSION"], local_hostname="client.test", timeout=TIMEOUT)
    s.starttls(context=CTX)
    s.ehlo()
    expect("XOAUTH2" in s.esmtp_features.get("auth", ""), s.esmtp_features)
    code, msg = s.docmd("AUTH", "XOAUTH2 " + base64.b64encode(xoauth2(OAUTH, tok).encode()).decode())
    expect(code == 235, f"SMTP XOAUTH2: {code} {msg!r}")
    s.quit()
    return f"{OAUTH}: token ok on IMAP, POP3, SMTP; password and expired token refused"


def curl_clients():
    def curl(*args, data=None):
        cmd = ["curl", "-sS", "--max-time", str(TIMEOUT), "--cacert", CA, *args]
        r = subprocess.run(cmd, input=data, capture_output=True, timeout=TIMEOUT + 5)
        expect(r.returncode == 0, f"{' '.join(cmd)}: rc {r.returncode}: {r.stderr.decode().strip()}")
        return r.stdout.decode(errors="replace")
    mid, raw = make_msg(ALICE, BOB, f"lab check curl {TAG}", "hello from curl")
    with tempfile.NamedTemporaryFile() as f:
        f.write(raw)
        f.flush()
        curl(f"smtp://{STRICT}:{P['SUBMISSION']}", "--ssl-reqd", "-u", f"{ALICE}:{ALICE_PW}",
             "--mail-from", ALICE, "--mail-rcpt", BOB, "--upload-file", f.name)
    m = imaps(BOB, BOB_PW)
    m.select("INBOX", readonly=True)
    uid = imap_wait_for(m, mid)
    m.logout()
    expect(mid in curl(f"imaps://{H}:{P['IMAPS']}/INBOX;UID={uid}", "-u", f"{BOB}:{BOB_PW}"), "curl imaps")
    expect(mid in curl(f"imap://{STRICT}:{P['IMAP']}/INBOX;UID={uid}", "--ssl-reqd", "-u", f"{BOB}:{BOB_PW}"),
           "curl imap + STARTTLS")
    last = curl(f"pop3s://{H}:{P['POP3S']}/", "-u", f"{BOB}:{BOB_PW}").split()[-2]
    expect(mid in curl(f"pop3://{STRICT}:{P['POP3']}/{last}", "--ssl-reqd", "-u", f"{BOB}:{BOB_PW}"),
           "curl pop3 + STLS: the newest message is not ours")
    return "smtp+STARTTLS -> imaps, imap+STARTTLS, pop3s, pop3+STLS"


def lmtp():
    lm = smtplib.LMTP(H, P["LMTP"], local_hostname="seeder.test", timeout=TIMEOUT)
    mid, raw = make_msg("seeder@client.test", ALICE, f"lab check lmtp {TAG}", "via LMTP")
    bad = lm.sendmail("seeder@client.test", [ALICE], raw)
    lm.quit()
    expect(not bad, bad)


CHECKS = [
    ("IMAPS: implicit TLS", implicit_tls(P["IMAPS"], "* OK", b"a LOGOUT\r\n")),
    ("POP3S: implicit TLS", implicit_tls(P["POP3S"], "+OK", b"QUIT\r\n")),
    ("SMTP submissions: implicit TLS", implicit_tls(P["SUBMISSIONS"], "220 ", b"QUIT\r\n")),
    ("IMAP: plaintext + STARTTLS", starttls_port(P["IMAP"], "imap", b"* OK", b"a1 CAPABILITY\r\n", b"STARTTLS", b"a LOGOUT\r\n")),
    ("POP3: plaintext + STLS", starttls_port(P["POP3"], "pop3", b"+OK", b"CAPA\r\n", b"STLS", b"QUIT\r\n")),
    ("SMTP submission: plaintext + STARTTLS", starttls_port(P["SUBMISSION"], "smtp", b"220 ", b"EHLO client.test\r\n", b"STARTTLS", b"QUIT\r\n")),
    ("TLS fails without the lab CA and for another name", tls_without_ca),
    ("strict host: no credentials before STARTTLS/STLS", strict_no_auth_before_tls),
    ("one password for IMAP, POP3 and SMTP (plain and tricky)", same_password_everywhere),
    ("wrong password refused on IMAP, POP3, SMTP", wrong_password_refused),
    ("submit on 587 (STARTTLS + AUTH) and 465 (TLS + AUTH)", submit_587),
    ("submitted mail arrives over IMAP (and outside recipients in outbound@)", arrives_imap),
    ("submitted mail arrives over POP3", arrives_pop3),
    ("OAuth2 XOAUTH2/OAUTHBEARER on IMAP, POP3, SMTP", oauth2),
    ("curl: smtp, imaps, imap, pop3s, pop3", curl_clients),
    ("LMTP delivery", lmtp),
]
for name, fn in CHECKS:
    check(name, fn)
passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(1 if passed != len(results) else 0)
