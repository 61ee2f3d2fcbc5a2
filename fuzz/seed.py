#!/usr/bin/env python3
"""Writes the hand-made seed corpus of each fuzz target (fuzz/corpus/<target>/seed-*).

For the codec's targets (SEEDS) the first byte of every input chooses where the fuzz body splits
it (see mailcat_codec::fuzz); the rest is protocol bytes. The session's targets (WHOLE, see
mailcat_session::fuzz) take their inputs as written: dns_response's first byte chooses the query
(0: SRV for _imaps._tcp.example.com, 1: MX for example.com) and the rest is the reply, whose id
is the query's; autoconfig_xml's input is the whole file; http_url's is a URL, a newline, and a
redirect's Location read on it. Run from anywhere: python3 fuzz/seed.py
"""
import hashlib, os, struct

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


# DNS replies (RFC 1035 §4.1), built field by field.
SRV, MX, CNAME, A, SOA = 33, 15, 5, 1, 6


def name(text):
    """A name in wire form, uncompressed: "example.com" -> \x07example\x03com\x00."""
    out = b""
    for label in text.split(".") if text else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def pointer(offset):
    return struct.pack(">H", 0xC000 | offset)


def header(msg_id, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", msg_id, flags, qd, an, ns, ar)


def question(qname, qtype):
    return name(qname) + struct.pack(">HH", qtype, 1)


def rr(owner, rtype, rdata, ttl=3600):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def srv_data(priority, weight, port, target):
    return struct.pack(">HHH", priority, weight, port) + target


QUERY_SRV, QUERY_MX = b"\x00", b"\x01"
OK = 0x8180  # QR RD RA, NOERROR
IMAPS = "_imaps._tcp.example.com"
# In a reply to the SRV query the question's name is at byte 12 and "example.com" at byte 24.
AT_QNAME, AT_EXAMPLE_COM = 12, 24


def srv_reply():
    """Four answers as a real resolver writes them: owners and targets compressed, an A to skip,
    and a target that points at an earlier target (two jumps)."""
    m = header(0x1234, OK, an=4) + question(IMAPS, SRV)
    assert len(m) == 41
    at_imap = len(m) + 12 + 6  # owner pointer (2) + fixed fields (10) + priority/weight/port (6)
    m += rr(pointer(AT_QNAME), SRV, srv_data(10, 5, 993, b"\x04IMAP" + pointer(AT_EXAMPLE_COM)))
    m += rr(pointer(AT_QNAME), A, bytes([192, 0, 2, 1]))
    m += rr(pointer(AT_QNAME), SRV, srv_data(20, 0, 993, b"\x06backup" + pointer(AT_EXAMPLE_COM)))
    m += rr(pointer(AT_QNAME), SRV, srv_data(10, 50, 9993, b"\x01b" + pointer(at_imap)))
    assert m[at_imap:at_imap + 5] == b"\x04IMAP"
    return m


def mx_reply():
    """example.com is an alias: its CNAME's target has the MX records, one in capitals and one
    with a label holding a byte a host name cannot (escaped by the parser), and an unrelated
    name's MX that must be left out."""
    m = header(0xBEEF, OK, an=4) + question("Example.COM", MX)
    at_target = len(m) + 12
    m += rr(pointer(AT_QNAME), CNAME, name("mail.example.net"))
    m += rr(pointer(at_target), MX, struct.pack(">H", 20) + b"\x03MX2" + pointer(at_target))
    m += rr(pointer(at_target), MX, struct.pack(">H", 10) + b"\x04m x1" + pointer(at_target))
    m += rr(name("other.example"), MX, struct.pack(">H", 5) + b"\x02mx" + pointer(AT_QNAME))
    return m


def nxdomain_reply():
    """No such name, with the zone's SOA in the authority section."""
    soa = name("ns1.example.com") + name("hostmaster.example.com")
    soa += struct.pack(">IIIII", 2024010101, 7200, 3600, 1209600, 300)
    return header(0x5A5A, 0x8183, ns=1) + question(IMAPS, SRV) + rr(name("example.com"), SOA, soa)


def truncated_reply():
    """TC set and the datagram cut in the middle of a record: ask again over TCP."""
    m = bytearray(srv_reply())
    m[2] |= 0x02
    return bytes(m[:70])


def root_target_reply():
    """The service is decidedly not offered here (RFC 2782: target ".")."""
    return header(0x0001, OK, an=1) + question(IMAPS, SRV) + rr(
        pointer(AT_QNAME), SRV, srv_data(0, 0, 0, b"\x00")
    )


def servfail_reply():
    return header(0xFFFF, 0x8182) + question("example.com", MX)


WHOLE = {
    "http_url": [
        # Autoconfig's URLs, and redirects of every kind.
        b"https://autoconfig.example.com/mail/config-v1.1.xml?emailaddress=alice%2Btag%40example.com\n"
        b"https://example.com/.well-known/autoconfig/mail/config-v1.1.xml",
        b"HTTPS://Login.MicrosoftOnline.com:443/consumers/oauth2/v2.0/token#frag\n../common/x?y=1#z",
        b"https://127.0.0.1:8443/dir/page.xml?x=1\n?y=2",
        b"https://h.example/a b\r\nX: y/{\"j\"}<>`\xc3\xa9\n//o.example:1/p q",
        b"https://h.example.\nnext.xml",
        # Refused: http, user info, IPv6, bad ports and hosts; redirects to other schemes.
        b"http://h.example/\nhttps://h.example/",
        b"https://user:pw@h.example/\n",
        b"https://[::1]:443/\n",
        b"https://h.example:0/\n",
        b"https://h.example:65536/x\n",
        b"https://-h.example/\n",
        b"https://h..example/\n",
        b"https://h.example/\nhttp://o.example/",
        b"https://h.example/\njavascript:alert(1)",
        b"https://h.example/\nHTTPS:o.example",
    ],
    "dns_response": [
        QUERY_SRV + srv_reply(),
        QUERY_MX + mx_reply(),
        QUERY_SRV + nxdomain_reply(),
        QUERY_SRV + truncated_reply(),
        QUERY_SRV + root_target_reply(),
        QUERY_MX + servfail_reply(),
    ],
    "autoconfig_xml": [
        # A full file in the style of Thunderbird's ISPDB: IMAP, POP3 and SMTP, with and
        # without implicit TLS, and the elements mailcat ignores.
        b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Fictional provider, written like the ISPDB's files -->
<clientConfig version="1.1">
  <emailProvider id="example.com">
    <domain>example.com</domain>
    <domain>example.net</domain>
    <displayName>Example Mail &amp; Co</displayName>
    <displayShortName>Example</displayShortName>
    <incomingServer type="imap">
      <hostname>imap.example.com</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>OAuth2</authentication>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.example.com</hostname>
      <port>995</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
      <pop3>
        <leaveMessagesOnServer>true</leaveMessagesOnServer>
        <downloadOnBiff>true</downloadOnBiff>
      </pop3>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.example.com</hostname>
      <port>143</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.com</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <authentication>OAuth2</authentication>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname><![CDATA[smtp.example.com]]></hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
    <documentation url="https://example.com/help/imap">
      <descr lang="en">Generic settings page</descr>
      <descr lang="de">Allgemeine Beschreibung der Einstellungen</descr>
    </documentation>
  </emailProvider>
  <oAuth2>
    <issuer>login.example.com</issuer>
    <scope>https://mail.example.com/</scope>
    <authURL>https://login.example.com/oauth2/auth</authURL>
    <tokenURL>https://login.example.com/oauth2/token</tokenURL>
  </oAuth2>
  <webMail>
    <loginPage url="https://webmail.example.com/" />
  </webMail>
</clientConfig>
""",
        # Placeholders: the domain makes a host name, the address and local part do not.
        b"""<clientConfig version="1.1"><emailProvider id="%EMAILDOMAIN%">
<domain>%EMAILDOMAIN%</domain>
<incomingServer type="imap"><hostname>imap.%EMAILDOMAIN%</hostname><port>993</port>
<socketType>SSL</socketType><username>%EMAILLOCALPART%+mailcat@%EMAILDOMAIN%</username>
</incomingServer>
<incomingServer type="pop3"><hostname>%EMAILLOCALPART%.%EMAILDOMAIN%</hostname><port>995</port>
<socketType>SSL</socketType><username>%EMAILADDRESS%</username></incomingServer>
<outgoingServer type="smtp"><hostname>%EMAILDOMAIN%</hostname><port>465</port>
<socketType>ssl</socketType><username>%EMAILADDRESS%%EMAILFOO%%</username></outgoingServer>
<outgoingServer type="smtp"><hostname>%EMAILADDRESS%</hostname><port>587</port>
<socketType>STARTTLS</socketType></outgoingServer>
</emailProvider></clientConfig>""",
        # Servers without TLS, of another type, or with a bad port: all left out.
        b"""<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="example.com">
<incomingServer type="imap"><hostname>imap.example.com</hostname><port>143</port>
<socketType>plain</socketType><authentication>password-cleartext</authentication></incomingServer>
<incomingServer type="exchange"><hostname>outlook.example.com</hostname><port>443</port>
<socketType>SSL</socketType></incomingServer>
<incomingServer type="pop3"><hostname>pop.example.com</hostname><port>0</port>
<socketType>SSL</socketType></incomingServer>
<outgoingServer type="smtp"><hostname>smtp.example.com</hostname><port>25</port>
<socketType>plain</socketType></outgoingServer>
<outgoingServer type="smtp"><hostname>smtp.example.com</hostname><port>65536</port>
<socketType>STARTTLS</socketType></outgoingServer>
</emailProvider></clientConfig>""",
        # A DOCTYPE defining entities (the billion laughs): refused before any is used.
        b"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY host SYSTEM "file:///etc/hostname">
]>
<clientConfig version="1.1"><emailProvider id="example.com">
<displayName>&lol2;</displayName>
<incomingServer type="imap"><hostname>&host;</hostname><port>993</port>
<socketType>SSL</socketType></incomingServer>
</emailProvider></clientConfig>""",
        # A byte-order mark, namespaces, character references, a processing instruction, empty
        # elements, a second provider (ignored) and unknown elements wherever.
        b"\xef\xbb\xbf"
        + """<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="style.xsl"?>
<cc:clientConfig xmlns:cc="http://example.com/ns" version="1.1">
<cc:emailProvider id=" example.com ">
<displayName>Bücher &#x26; Co&#46;</displayName><domain/>
<incomingServer type="IMAP"><unknown><hostname>wrong.example.com</hostname></unknown>
<hostname>&#x69;map.example.com.</hostname><port> 993 </port><socketType>SSL</socketType>
<hostname>second.example.com</hostname><authentication/><username></username>
</incomingServer>
</cc:emailProvider>
<emailProvider id="other.example"><incomingServer type="imap"><hostname>imap.other.example</hostname>
<port>993</port><socketType>SSL</socketType></incomingServer></emailProvider>
</cc:clientConfig>
""".encode(),
        # Not well-formed: a mismatched end tag in the middle of a server.
        b"""<clientConfig><emailProvider id="example.com"><incomingServer type="imap">
<hostname>imap.example.com</port><port>993</port><socketType>SSL</socketType>
</incomingServer></emailProvider></clientConfig>""",
        # The wrong root element: an Outlook-style autodiscover reply.
        b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
<Response><Account><Protocol><Type>IMAP</Type><Server>imap.example.com</Server><Port>993</Port>
<SSL>on</SSL></Protocol></Account></Response></Autodiscover>""",
    ],
}

# The cores' targets (mailcat_session::fuzz::{pop3,smtp,imap,opening}_core): the first byte sets
# options (bit 0: pipelining / LITERAL+, bit 1: a longer script; bits 5-7: the size of each read,
# 1 byte to all at once), the rest is what the server sends for the whole script. For
# opening_core, bits 0-1 choose the protocol (0 IMAP, 1 POP3, 2 SMTP), bit 2 implicit TLS, and
# a 0xFF byte separates what comes before the TLS upgrade from what comes after it.
WHOLE.update({
    "pop3_core": [
        b"\xe0+OK\r\n+OK logged in\r\n+OK 2 320\r\n+OK\r\n1 120\r\n2 200\r\n.\r\n+OK\r\n1 a\r\n2 b\r\n.\r\n"
        b"+OK\r\nSubject: x\r\n\r\n..dot\r\n.\r\n+OK\r\nbody\r\n.\r\n-ERR no such message\r\n"
        b"+OK\r\nUSER\r\nPIPELINING\r\n.\r\n+ \r\n-ERR cancelled\r\n+OK bye\r\n",
        b"\x21+OK\r\n+OK\r\n+OK 1 5\r\n+OK\r\n1 5\r\n.\r\n+OK\r\n1 u\r\n.\r\n+OK\r\nx\r\n.\r\n+OK\r\ny\r\n.\r\n+OK\r\nz\r\n.\r\n",
        b"\x00+OK\r\n+OK\r\n+OK planted\r\n",
        b"\x40-ERR [AUTH] no\r\n+OK\r\n" + b"x" * 300,
    ],
    "smtp_core": [
        b"\xe1235 2.7.0 ok\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n250 2.0.0 queued\r\n250 ok\r\n250 ok\r\n221 bye\r\n",
        b"\x20334 \r\n535 5.7.8 no\r\n250 ok\r\n550 no such user\r\n250 ok\r\n354 go\r\n",
        b"\x03235 ok\r\n250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n250 ok\r\n421 bye\r\n",
        b"\x01235 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n",
        b"\x00421 4.3.2 shutting down\r\n",
        b"\x00235 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 DATA answered without 354\r\n250 queued\r\n",
    ],
    "imap_core": [
        b"\xe0+ go\r\nA0001 OK [CAPABILITY IMAP4rev1 IDLE] in\r\n* CAPABILITY IMAP4rev1 IDLE\r\nA0002 OK\r\n"
        b"* FLAGS (\\Seen)\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 7]\r\nA0003 OK [READ-WRITE]\r\n* SEARCH 1 2 3\r\nA0004 OK\r\n"
        b"* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 2)\r\nA0005 OK\r\n"
        b"* 1 FETCH (UID 1 BODY[] {5}\r\nHello)\r\n* 2 FETCH (UID 2 BODY[] {70}\r\n" + b"y" * 70 + b")\r\nA0006 OK\r\n"
        b"+ idling\r\n* 4 EXISTS\r\nA0007 OK\r\n* BYE\r\nA0008 OK\r\n",
        b"\x41A0001 OK\r\n* CAPABILITY IMAP4rev1\r\nA0002 OK\r\n* BYE going\r\n",
        b"\x00+ \r\nA0009 OK planted\r\n",
        b"\x20+ \r\nA0001 NO [AUTHENTICATIONFAILED] no\r\n* 1 FETCH (BODY[] {9999}\r\n",
    ],
    "opening_core": [
        b"\x20* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\nA0001 OK\r\nA0002 OK go\r\n\xff* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA0001 OK\r\n",
        b"\x21+OK ready\r\n+OK\r\nSTLS\r\nUSER\r\n.\r\n+OK go\r\n\xff+OK\r\nUSER\r\n.\r\n",
        b"\x22220 mail ESMTP\r\n250-mail\r\n250 STARTTLS\r\n220 go\r\n\xff250-mail\r\n250 AUTH PLAIN\r\n",
        b"\x02220 mail ESMTP\r\n250-mail\r\n250 STARTTLS\r\n220 go\r\n250 injected\r\n",
        # Read all at once: a response injected behind IMAP's STARTTLS go-ahead.
        b"\xe0* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\nA0001 OK\r\nA0002 OK go\r\nA0003 OK injected\r\n",
        b"\x00* PREAUTH hi\r\n",
        b"\x01+OK\r\n-ERR no CAPA\r\n",
        b"\x06220 mail\r\n250 mail\r\n",
        b"\x00\x16\x03\x01\x00\x05hello",
    ],
    "oauth2_response": [
        b"\x00{\"access_token\":\"ya29.a0Af\",\"expires_in\":3599,\"refresh_token\":\"1//0g\",\"scope\":\"https://mail.google.com/\",\"token_type\":\"Bearer\"}",
        b"\x02{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70000: \\u001b[31mred\\u0007\"}",
        b"\x0a{\"error\":\"authorization_pending\"}",
        b"\x10<html><body>Sign in</body></html>",
        b"\x00{\"access_token\":\"a b\",\"expires_in\":\"12\"}",
        b"\x00{\"access_token\":\"t\",\"expires_in\":1e300,\"token_type\":\"mac\"}",
        b"\x00{\"version\":1,\"provider\":\"google\",\"client_id\":\"c\",\"scopes\":[\"s\"],\"access_token\":\"t\",\"expires_at\":18446744073709551615,\"obtained_at\":1,\"refresh_token\":\"r\"}\n",
        b"\x06[1,2]",
        # Device authorization answers (RFC 8628 §3.2; Google's verification_url and strings).
        b"\x00{\"device_code\":\"GmRh\",\"user_code\":\"WDJB-MJHT\",\"verification_uri\":\"https://example.com/device\",\"verification_uri_complete\":\"https://example.com/device?user_code=WDJB-MJHT\",\"expires_in\":1800,\"interval\":5}",
        b"\x00{\"device_code\":\"AH-1\",\"user_code\":\"GQVQ-JKEC\",\"verification_url\":\"https://www.google.com/device\",\"expires_in\":\"1800\",\"interval\":\"0\"}",
        b"\x00{\"device_code\":\"x\",\"user_code\":\"\\u001b[2J\",\"verification_uri\":\"http://evil.example/\",\"expires_in\":99999999}",
    ],
    "autoconfig_names": [
        b"alice+tag@example.com\nexample.com",
        b"a&b=c#d@x.org\naspmx.l.google.com.",
        b"bob@Example.COM\nexample-com.mail.protection.outlook.com",
        b"x@y\nevil-outlook.com",
        b"x@y\n" + b"a" * 64 + b".com",
        b"\n.",
        b"x@y\nh\xc3\xa9.example",
    ],
})

# The codec's encoders given arbitrary values (mailcat_codec::fuzz::command_lines: an options
# byte, then up to four LF-separated values) and its small readers of server text
# (reply_fields: the whole input).
WHOLE.update({
    "command_lines": [
        b"\x00user@example.com\nPLAIN\nexample.org\n\x05\x00\x00\x00",
        b"\x01a@b>\r\nRCPT TO:<x@evil>\nenv\r\nid\n[192.0.2.1]\npw\r\nX",
        "\x1fEntwürfe \"q\" \\\n%*\n\\Seen\nmessage body\r\n.\r\n".encode(),
        b"\x02\xc3\xa9l\xc3\xa8ve@\xc3\xa9cole.example\nXOAUTH2\n-bad-\n\x00\x00\x00\x00",
    ],
    "reply_fields": [
        b"1 120",
        b"2 abc-DEF_09",
        b"SASL PLAIN LOGIN XOAUTH2\nEXPIRE 30 USER\nLOGIN-DELAY 900\nIMPLEMENTATION x",
        b"AUTH PLAIN LOGIN\nSIZE 35882577\nAUTH=LOGIN\n8BITMIME",
        b"&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-",
        b"eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=",
        b"ready <1896.697170952@dbc.mtview.ca.us>",
    ],
})

# An HTTPS server's answer (mailcat_session::fuzz::http_response): an options byte (bits 0-2:
# the size of each read, bit 3: follow redirects, bit 4: a 64-byte body limit), then the bytes.
WHOLE.update({
    "http_response": [
        b"\x07HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":\"token\"}",
        b"\x02HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
        b"\x0fHTTP/1.1 302 Found\r\nLocation: /other?x=1\r\nContent-Length: 0\r\n\r\n",
        b"\x17HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100,
        b"\x14HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + b"y" * 64 + b"\r\n1\r\nz\r\n0\r\n\r\n",
        b"\x04HTTP/1.1 200 OK\r\n\r\nbody until close",
        b"\x07HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}",
        b"\x07HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"\x0fHTTP/1.0 301 Moved\r\nLocation: http://evil.example/\r\n\r\n",
    ],
})

for target, inputs in WHOLE.items():
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for data in inputs:
        filename = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(directory, filename), "wb") as f:
            f.write(data)

for target, seeds in SEEDS.items():
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for i, seed in enumerate(seeds):
        for split in (0, 77):
            data = bytes([split]) + seed
            name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
