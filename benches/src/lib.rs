//! Inputs shared by the benchmarks: realistic server byte streams, built deterministically; and
//! the end-to-end benches' way to a release build of mailcat.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this package is `benches/` in it).
pub fn workspace() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The value of the one optional `--FLAG N` a bench takes (`default` without it); `N` must be
/// at least `min`. Anything else is the `usage` line as an error.
pub fn numeric_flag(flag: &str, default: u64, min: u64, usage: &str) -> Result<u64, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => Ok(default),
        [given, n] if given == flag => n
            .parse()
            .ok()
            .filter(|&n| n >= min)
            .ok_or_else(|| usage.to_string()),
        _ => Err(usage.to_string()),
    }
}

/// Builds mailcat in release mode and returns its path.
pub fn build_mailcat() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "mailcat"])
        .current_dir(workspace())
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release -p mailcat: {status}"));
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    Ok(workspace().join(target).join("release/mailcat"))
}

/// `count` FETCH responses, each with a `literal_len`-byte BODY[] literal, as Dovecot sends them.
pub fn fetch_stream(count: u32, literal_len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(literal_len);
    let line =
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n";
    while body.len() < literal_len {
        let take = line.len().min(literal_len - body.len());
        body.extend_from_slice(&line[..take]);
    }
    let mut out = Vec::with_capacity(count as usize * (literal_len + 80));
    for seq in 1..=count {
        out.extend_from_slice(
            format!("* {seq} FETCH (UID {} RFC822.SIZE {literal_len} FLAGS (\\Seen) BODY[] {{{literal_len}}}\r\n", seq + 1000)
                .as_bytes(),
        );
        out.extend_from_slice(&body);
        out.extend_from_slice(b")\r\n");
    }
    out
}

/// `count` FETCH responses with a multipart BODYSTRUCTURE and an ENVELOPE each (a mail client's
/// message-list refresh).
pub fn bodystructure_stream(count: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for seq in 1..=count {
        out.extend_from_slice(format!(
            "* {seq} FETCH (UID {uid} FLAGS (\\Seen $Forwarded) RFC822.SIZE 48213 \
ENVELOPE (\"Tue, 24 Nov 2026 10:01:02 +0100\" \"Quarterly report {seq}\" \
((\"Ann Example\" NIL \"ann\" \"example.com\")) ((\"Ann Example\" NIL \"ann\" \"example.com\")) \
((\"Ann Example\" NIL \"ann\" \"example.com\")) ((NIL NIL \"bob\" \"example.org\")(\"Carol\" NIL \"carol\" \"example.net\")) \
NIL NIL NIL \"<msg{seq}@example.com>\") \
BODYSTRUCTURE (((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 1234 40 NIL NIL NIL NIL)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 5678 120 NIL NIL NIL NIL) \"ALTERNATIVE\" \
(\"BOUNDARY\" \"b2_{seq}\") NIL NIL NIL)\
(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") NIL NIL \"BASE64\" 40000 NIL (\"ATTACHMENT\" (\"FILENAME\" \"report.pdf\")) NIL NIL) \
\"MIXED\" (\"BOUNDARY\" \"b1_{seq}\") NIL NIL NIL))\r\n",
            uid = seq + 5000
        ).as_bytes());
    }
    out
}

/// A Gmail-like EHLO reply.
pub fn ehlo_reply() -> Vec<u8> {
    b"250-smtp.gmail.com at your service, [192.0.2.1]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n\
250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n250-ENHANCEDSTATUSCODES\r\n\
250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n"
        .to_vec()
}

/// A POP3 RETR reply: `+OK`, a dot-stuffed body of about `len` bytes, the terminator.
pub fn pop3_retr(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    out.extend_from_slice(format!("+OK {len} octets\r\n").as_bytes());
    let lines: [&[u8]; 3] = [
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n",
        b"..a line that began with a dot, stuffed by the server\r\n",
        b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n",
    ];
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(lines[i % 3]);
        i += 1;
    }
    out.extend_from_slice(b".\r\n");
    out
}
