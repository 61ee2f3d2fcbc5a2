#!/usr/bin/env python3
"""Mint an OAuth2 access token that the lab's servers accept for SASL XOAUTH2 and
OAUTHBEARER on IMAP, POP3 and SMTP.

    mint_token.py --env DIR/lab.env [USER] [--ttl SECONDS] [--sasl xoauth2|oauthbearer]
    mint_token.py --key-file KEY USER [--ttl SECONDS]

(Usually through `tests/lab/lab.sh token [DIR] [USER]`.) USER defaults to the lab's
OAuth2 user. The token is an HS256 JWT {"sub": USER, "iat", "exp"} signed with the lab's
key; Dovecot checks the signature, the times, and that "sub" is the user named in the SASL
message, all locally. A negative --ttl gives an expired token, for negative tests. With
--sasl the base64 SASL initial response is printed instead of the bare token:
  xoauth2:     "user=" USER ^A "auth=Bearer " TOKEN ^A ^A
  oauthbearer: "n,a=" USER "," ^A "auth=Bearer " TOKEN ^A ^A   (RFC 7628)
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(key_b64: str, user: str, ttl: int = 3600) -> str:
    now = int(time.time())
    # An expired token must also have been issued in the past, or Dovecot calls it invalid.
    claims = {"sub": user, "iat": now if ttl > 0 else now + ttl - 60, "exp": now + ttl}
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(base64.b64decode(key_b64), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def sasl_response(mech: str, user: str, token: str) -> str:
    if mech == "xoauth2":
        raw = f"user={user}\x01auth=Bearer {token}\x01\x01"
    else:
        raw = f"n,a={user},\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode()).decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--env", help="the lab's env file (DIR/lab.env)")
    src.add_argument("--key-file", help="the base64 HS256 key file")
    ap.add_argument("user", nargs="?")
    ap.add_argument("--ttl", type=int, default=3600, help="seconds of validity (negative: expired)")
    ap.add_argument("--sasl", choices=("xoauth2", "oauthbearer"))
    a = ap.parse_args()
    if a.env:
        import labenv
        env = labenv.load(a.env)
        key, user = env["OAUTH2_HS256_KEY"], a.user or env["OAUTH2_USER"]
    else:
        with open(a.key_file) as f:
            key = f.read().strip()
        user = a.user
        if not user:
            sys.exit("mint_token.py: --key-file needs a USER")
    token = mint(key, user, a.ttl)
    print(sasl_response(a.sasl, user, token) if a.sasl else token)


if __name__ == "__main__":
    main()
