#!/usr/bin/env python3
"""Writes the hand-made seed corpus of each fuzz target (fuzz/corpus/<target>/seed-*).

The first byte of every input chooses where the fuzz body splits it (see mailcat_codec::fuzz);
the rest is protocol bytes. Run from anywhere: python3 fuzz/seed.py
"""
import hashlib, os

HERE = os.path.dirname(os.path.abspath(__file__))

SEEDS = {
    "pop3_response": [
        b"+OK Dovecot ready. <1896.697170952@dbc.mtview.ca.us>\r\n+OK\r\nSTLS\r\nUSER\r\nSASL PLAIN\r\n.\r\n",
        b"+OK 2 320\r\n+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n+OK\r\nline\r\n..dot\r\n..\r\n.\r\n",
        b"-ERR [IN-USE] mailbox locked\r\n+ \r\n+\r\n+OK Gpop ready for requests from 192.0.2.1 x1mb\r\n",
        b"+OK\r\nunterminated body\r\n",
        b"* OK IMAP greeting on a POP3 port\r\n",
    ],
    "smtp_reply": [
        b"220 smtp.gmail.com ESMTP x1sm\r\n250-smtp.gmail.com at your service, [192.0.2.1]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n",
        b"535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 https://support.google.com/mail/?p=BadCredentials\r\n",
        b"535 5.7.139 Authentication unsuccessful, basic authentication is disabled.\r\n",
        b"250-a\r\n251 b\r\n",
        b"2x0 bad\r\n",
        b"250-AUTH=LOGIN PLAIN\r\n250-AUTH  LOGIN PLAIN\r\n250 8 BITMIME\r\n",
    ],
    "imap_response": [
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n",
        b"* 1 FETCH (UID 7 RFC822.SIZE 120 FLAGS (\\Seen) BODY[] {5}\r\nHello)\r\nA1 OK done\r\n",
        b"* 2 FETCH (UID 8 BODY[TEXT]<0> {100}\r\n" + b"x" * 100 + b" BODY[HEADER] NIL)\r\n",
        b"* LIST (\\HasNoChildren \\Sent) \"/\" \"&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-\"\r\n* STATUS INBOX (MESSAGES 3 UIDNEXT 9 )\r\n",
        b"* 3 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 12 -1 NIL NIL NIL)(\"TEXT\" \"HTML\" NIL NIL NIL NIL 30 2) \"ALTERNATIVE\" (\"BOUNDARY\" NIL) NIL NIL) ENVELOPE (NIL \"subj\" ((\"A\" NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL NIL \"<id@x>\"))\r\n",
        b"A2 NO [Error=\"Invalid request\" Proxy=AM0PR01CA0001.eurprd01.prod.exchangelabs.com:143] failed\r\n+\r\n+ \r\n* OK [UIDVALIDITY 1]\r\n",
        b"* 1 FETCH (BODY[] {18446744073709551615}\r\n",
        b"* ESEARCH (TAG \"A3\") UID COUNT 3 ALL 1:3,5\r\n* VANISHED (EARLIER) 1:4294967295\r\n* ID (\"name\" \"Dovecot\")\r\n* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
    ],
    "dot_unstuff": [
        b"line one\r\n..leading dot\r\n..\r\n...\r\n.\r\n",
        b".\r\n",
        b"a\n.\nb\r\n.x\r\n.\r\n",
        b"no terminator\r\n.",
    ],
    "dot_stuff_roundtrip": [
        b".starts with a dot\r\nbare lf\nbare cr\rend",
        b"\r\n.\r\n.\r\n",
        b"..\n\n.\n",
        b"",
    ],
    "command_encode": [
        b"pw\r\nA2 DELETE INBOX",
        b"INBOX\r\nA3 DELETE Sent",
        b"a@b>\r\nRCPT TO:<x@evil>",
        "Entwürfe/Отправленные & \"quoted\" \\".encode(),
        b"user@example.com",
    ],
}

for target, seeds in SEEDS.items():
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for i, seed in enumerate(seeds):
        for split in (0, 77):
            data = bytes([split]) + seed
            name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
