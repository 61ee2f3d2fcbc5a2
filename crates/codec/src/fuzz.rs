//! Bodies of the fuzz targets, shared by `fuzz/` and the corpus replay test in `tests/`.
//!
//! Each body checks properties, not only the absence of panics: a decoder fed the same bytes in
//! two pieces says the same thing as when fed them at once, and keeps the [`crate::Decode`]
//! contract at every step (the decoders are driven through it, by the loop the split tests
//! use); a stuffed body unstuffs back to the original; an encoded command is read by a server
//! as exactly one command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Range;

use crate::core::decode::check::{
    feed, ImapSession, Pop3Session, Run, Script, Seen, Session, SmtpSession, Transcript,
};
use crate::core::dot::{self, DotStuffer, DotUnstuffer};
use crate::{imap, pop3, smtp, Decode, DecodeError, Decoded, Limits};

/// Small limits so the fuzzer reaches the limit checks quickly.
fn small_limits(base: Limits) -> Limits {
    let mut limits = base;
    limits.max_line = limits.max_line.min(300);
    limits.max_literal = limits.max_literal.min(2000);
    limits.stream_threshold = limits.stream_threshold.min(64);
    limits.max_message = limits.max_message.min(100_000);
    limits.max_response = limits.max_response.min(10_000);
    limits.max_lines = limits.max_lines.min(200);
    limits
}

/// The first byte chooses a split point (and options); the rest is the input.
fn split_input(data: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (&first, input) = data.split_first()?;
    let cut = if input.is_empty() {
        0
    } else {
        usize::from(first) * 7 % (input.len() + 1)
    };
    Some((first, input, cut))
}

/// Feeds `input` through the session's decoder in two pieces (the first `cut` bytes, then the
/// rest) and whole, through the [`crate::Decode`] contract (whose promises [`feed`] checks at
/// every step), and asserts both runs say the same.
///
/// Only success is compared between the two runs, not which error: a decoder may notice one of
/// two problems first depending on how much it has seen (a bad first byte before a bare LF),
/// and either report is right.
fn same_in_two_pieces<S: Session + Clone>(
    session: &S,
    input: &[u8],
    cut: usize,
    what: &str,
) -> Run {
    let outcome = |run: &Run| (run.transcript.clone(), run.end.is_ok());
    let whole = feed(&mut session.clone(), input, &[]);
    let split = feed(&mut session.clone(), input, &[cut]);
    assert_eq!(
        outcome(&whole),
        outcome(&split),
        "{what} decoding depends on how the bytes arrived"
    );
    whole
}

/// POP3: a whole session's replies, with the expectation for each reply chosen from the input.
pub fn pop3_response(data: &[u8]) {
    let Some((first, input, cut)) = split_input(data) else {
        return;
    };
    let session = Pop3Session::new(small_limits(Limits::pop3()), Script::Seeded(first));
    same_in_two_pieces(&session, input, cut, "POP3");
}

/// SMTP: replies one after the other; a prefix of a reply is never anything but Incomplete.
pub fn smtp_reply(data: &[u8]) {
    let Some((_, input, cut)) = split_input(data) else {
        return;
    };
    let session = SmtpSession::new(small_limits(Limits::smtp()));
    same_in_two_pieces(&session, input, cut, "SMTP");
}

/// IMAP: responses one after the other through the streaming decoder.
pub fn imap_response(data: &[u8]) {
    let Some((_, input, cut)) = split_input(data) else {
        return;
    };
    let session = ImapSession::new(small_limits(Limits::imap()));
    same_in_two_pieces(&session, input, cut, "IMAP");
}

/// The dot-unstuffer seen through the decode contract, so its fuzz target runs the same loop
/// as the protocol decoders'. It lives inside a body: input that ends is always cut short.
#[derive(Debug, Clone, Default)]
struct Unstuff(DotUnstuffer);

impl Decode for Unstuff {
    /// The range of some body bytes, or `None` for the terminator.
    type Event<'a> = Option<Range<usize>>;

    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<Option<Range<usize>>> {
        // `.` CRLF is the longest thing it waits for.
        Decoded::from_result(self.0.decode_range(input), 3)
    }

    fn end_of_input(&self, _unread: &[u8]) -> Result<(), DecodeError> {
        Err(self.0.end_of_input())
    }
}

impl Session for Unstuff {
    type Decoder = Self;

    fn decoder(&self) -> Self {
        Self::default()
    }

    fn record(&mut self, event: Option<Range<usize>>, consumed: &[u8], out: &mut Transcript) {
        match event {
            Some(range) => out.bytes(&consumed[range]),
            None => out.item("end"),
        }
    }
}

/// Dot-unstuffing: streaming in two pieces gives what one buffer gives.
pub fn dot_unstuff(data: &[u8]) {
    let Some((_, input, cut)) = split_input(data) else {
        return;
    };
    let whole = same_in_two_pieces(&Unstuff::default(), input, cut, "unstuffing");
    // The convenience function agrees with the streaming decoder.
    if let Ok((body, _)) = dot::unstuff_all(input) {
        let streamed = match whole.transcript.seen.first() {
            Some(Seen::Bytes(bytes)) => bytes.clone(),
            _ => Vec::new(),
        };
        assert_eq!(body, streamed);
    }
}

/// Dot-stuffing then unstuffing gives the body back with CRLF line endings, whatever the chunking.
pub fn dot_stuff_roundtrip(data: &[u8]) {
    let Some((_, input, cut)) = split_input(data) else {
        return;
    };
    let whole = dot::stuff_all(input);
    let mut pieces = Vec::new();
    let mut stuffer = DotStuffer::new();
    stuffer.push(&input[..cut], &mut pieces);
    stuffer.push(&input[cut..], &mut pieces);
    stuffer.finish(&mut pieces);
    assert_eq!(
        whole, pieces,
        "stuffing depends on how the body was chunked"
    );
    for (i, &b) in whole.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(whole.get(i + 1), Some(&b'\n'), "bare CR in stuffed output"),
            b'\n' => assert!(i > 0 && whole[i - 1] == b'\r', "bare LF in stuffed output"),
            _ => {}
        }
    }
    let (body, used) = dot::unstuff_all(&whole).expect("our own stuffing unstuffs");
    assert_eq!(used, whole.len(), "the terminator comes only at the end");
    assert_eq!(body, normalise_line_endings(input));
}

/// CR, LF and CRLF become CRLF; a body that does not end with a line ending gets one.
fn normalise_line_endings(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 2);
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                i += if input.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Command encoding: any user value yields an error or exactly one command on the wire, and the
/// value comes back from it unchanged.
pub fn command_encode(data: &[u8]) {
    use imap::command::wire_check::{read_astring, server_read};
    use imap::command::{Command, EncodeOptions, Mailbox, SelectParams, Tag};

    let Some((first, input, cut)) = split_input(data) else {
        return;
    };
    let (user, secret) = input.split_at(cut);
    let options = EncodeOptions {
        literal_plus: first & 1 != 0,
        literal_minus: first & 2 != 0,
        utf8_accept: first & 4 != 0,
    };
    let tag = Tag::new("A1").expect("valid tag");

    // IMAP LOGIN: the password may hold any byte but NUL; it is read back exactly.
    let username = String::from_utf8_lossy(user).into_owned();
    let login = Command::Login {
        username,
        password: imap::command::Secret::new(secret),
    };
    if let Ok(encoded) = login.encode(&tag, &options) {
        let wire = encoded.to_bytes();
        assert_eq!(
            server_read(&wire).0,
            1,
            "LOGIN became more than one command"
        );
        let (_, after_user) = read_astring(&wire, b"A1 LOGIN ".len());
        let (password, end) = read_astring(&wire, after_user + 1);
        assert_eq!(password, secret);
        assert_eq!(&wire[end..], b"\r\n");
    }

    // IMAP SELECT: a mailbox name is refused or names exactly that mailbox.
    if let Ok(mailbox) = Mailbox::new(String::from_utf8_lossy(input).into_owned()) {
        let wire = Command::Select {
            mailbox,
            params: SelectParams::None,
        }
        .encode(&tag, &options)
        .unwrap()
        .to_bytes();
        assert_eq!(
            server_read(&wire).0,
            1,
            "SELECT became more than one command"
        );
    }

    // POP3 PASS and SMTP RCPT: one line or an error.
    let pass = pop3::command::Command::Pass(pop3::command::Secret::new(secret));
    if let Ok(wire) = pass.encode() {
        assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(wire.ends_with(b"\r\n") && !wire[..wire.len() - 2].contains(&b'\r'));
    }
    if let Ok(address) = smtp::address::Address::new(&String::from_utf8_lossy(input)) {
        let rcpt = smtp::command::Command::RcptTo {
            forward_path: address,
            parameters: Default::default(),
        };
        if let Ok(wire) = rcpt.encode() {
            assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
            assert!(!wire[..wire.len() - 2].iter().any(|&b| b == b'\r' || b == 0));
        }
    }
}

/// The input as up to four pieces, split at LF: the arguments of one round of encoders or
/// field readers.
fn pieces(data: &[u8]) -> [&[u8]; 4] {
    let mut out = [&[][..]; 4];
    let mut rest = data;
    for slot in out.iter_mut().take(3) {
        match rest.iter().position(|&b| b == b'\n') {
            Some(at) => {
                *slot = &rest[..at];
                rest = &rest[at + 1..];
            }
            None => {
                *slot = rest;
                rest = &[];
            }
        }
    }
    out[3] = rest;
    out
}

/// A POP3 or SMTP command line: exactly one line, CRLF at its end and nowhere else, no NUL.
fn assert_one_line(wire: &[u8], what: &str) {
    assert!(
        wire.ends_with(b"\r\n"),
        "{what}: no CRLF at the end of {wire:?}"
    );
    let body = &wire[..wire.len() - 2];
    assert!(
        !body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
        "{what}: a second line or a NUL in {wire:?}"
    );
}

/// Every command encoder, given arbitrary user values (the input's pieces): each value is
/// refused or becomes exactly one command, POP3 and SMTP lines with no CR, LF or NUL inside,
/// IMAP commands that a server reads as one (literals included).
pub fn command_lines(data: &[u8]) {
    use imap::command::wire_check::server_read;
    use imap::command::{
        Command, EncodeOptions, Flag, ListPattern, Mailbox, SearchKey, SequenceSet, StoreMode, Tag,
    };
    use pop3::command::Command as Pop3;
    use smtp::command::{ClientId, Command as Smtp, MailParameters, RcptParameters};

    let Some((&options, input)) = data.split_first() else {
        return;
    };
    let [a, b, c, d] = pieces(input);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let (ta, tb, tc) = (text(a), text(b), text(c));
    let number = u32::from_le_bytes([
        d.first().copied().unwrap_or(1),
        d.get(1).copied().unwrap_or(0),
        d.get(2).copied().unwrap_or(0),
        d.get(3).copied().unwrap_or(0),
    ]);

    // POP3.
    let pop3_commands = [
        Pop3::User(ta.clone()),
        Pop3::Apop {
            name: ta.clone(),
            digest: pop3::command::Secret::new(b),
        },
        Pop3::Auth {
            mechanism: tc.clone(),
            initial_response: (options & 1 != 0).then(|| pop3::command::Secret::new(d)),
        },
        Pop3::Retr(number),
        Pop3::Top {
            message: number,
            lines: number.rotate_left(7),
        },
        Pop3::List(Some(number)),
    ];
    for command in &pop3_commands {
        if let Ok(wire) = command.encode() {
            assert_one_line(&wire, "POP3");
        }
    }

    // SMTP.
    let address = smtp::address::Address::new(&ta).ok();
    let mut smtp_commands = vec![Smtp::Auth {
        mechanism: tb.clone(),
        initial_response: (options & 1 != 0).then(|| crate::core::secret::Secret::new(d)),
    }];
    if let Ok(id) = ClientId::parse(&tc) {
        smtp_commands.push(Smtp::Ehlo(id));
    }
    smtp_commands.push(Smtp::MailFrom {
        reverse_path: address.clone(),
        parameters: MailParameters {
            size: Some(u64::from(number)),
            envid: Some(tb.clone()),
            smtputf8: options & 2 != 0,
            ..Default::default()
        },
    });
    if let Some(address) = address {
        smtp_commands.push(Smtp::RcptTo {
            forward_path: address.clone(),
            parameters: RcptParameters {
                notify: None,
                orcpt: Some(address),
            },
        });
    }
    for command in &smtp_commands {
        if let Ok(wire) = command.encode() {
            assert_one_line(&wire, "SMTP");
        }
    }

    // IMAP.
    let tag = Tag::new("A1").expect("valid tag");
    let encode_options = EncodeOptions {
        literal_plus: options & 4 != 0,
        literal_minus: options & 8 != 0,
        utf8_accept: options & 16 != 0,
    };
    let mut imap_commands = vec![
        Command::Authenticate {
            mechanism: ta.clone(),
            initial_response: (options & 1 != 0).then(|| imap::command::Secret::new(d)),
        },
        Command::Id(Some(vec![
            (ta.clone(), Some(tb.clone())),
            (tc.clone(), None),
        ])),
        Command::Enable(vec![ta.clone(), tb.clone()]),
        Command::UidSearch(SearchKey::Header {
            field: ta.clone(),
            value: tb.clone(),
        }),
    ];
    let mailbox = Mailbox::new(ta.clone());
    let other = Mailbox::new(tb.clone());
    if let (Ok(mailbox), Ok(other)) = (&mailbox, &other) {
        imap_commands.push(Command::Rename {
            from: mailbox.clone(),
            to: other.clone(),
        });
    }
    if let Ok(mailbox) = mailbox {
        let flags: Vec<Flag<'static>> = Flag::keyword(&tc).into_iter().collect();
        imap_commands.push(Command::Append {
            mailbox: mailbox.clone(),
            flags: flags.clone(),
            date: None,
            message: d.to_vec(),
        });
        imap_commands.push(Command::UidStore {
            set: SequenceSet::all(),
            mode: StoreMode::Add,
            silent: true,
            flags,
        });
        imap_commands.push(Command::Create(mailbox));
    }
    if let (Ok(reference), Ok(pattern)) =
        (ListPattern::new(tb.clone()), ListPattern::new(tc.clone()))
    {
        imap_commands.push(Command::List {
            reference,
            pattern,
            special_use: options & 32 != 0,
        });
    }
    // SASL payloads: the fields come back apart, no separator sneaks in with a value.
    use crate::core::sasl;
    if let Ok(payload) = sasl::plain(&ta, &tb, c) {
        let parts: Vec<&[u8]> = payload.as_bytes().split(|&b| b == 0).collect();
        assert_eq!(parts, [ta.as_bytes(), tb.as_bytes(), c], "PLAIN fields");
    }
    if let Ok(payload) = sasl::xoauth2(&ta, &tb) {
        let fields: Vec<&[u8]> = payload.as_bytes().split(|&b| b == 1).collect();
        assert_eq!(fields.len(), 4, "XOAUTH2 fields: {fields:?}");
        assert_eq!(
            fields[0].strip_prefix(b"user=".as_slice()),
            Some(ta.as_bytes())
        );
    }
    if let Ok(payload) = sasl::oauthbearer(&ta, &tc, 993, &tb) {
        let fields: Vec<&[u8]> = payload.as_bytes().split(|&b| b == 1).collect();
        assert_eq!(fields.len(), 6, "OAUTHBEARER fields: {fields:?}");
        assert_eq!(
            fields[0].iter().filter(|&&b| b == b',').count(),
            2,
            "GS2 header"
        );
    }
    if let Ok(payload) = sasl::cram_md5(&ta, b, c) {
        let text = payload.as_bytes();
        assert_eq!(text.iter().filter(|&&b| b == b' ').count(), 1, "CRAM-MD5");
        let digest = &text[ta.len() + 1..];
        assert!(digest.len() == 32 && digest.iter().all(u8::is_ascii_hexdigit));
    }

    for command in &imap_commands {
        if let Ok(encoded) = command.encode(&tag, &encode_options) {
            let wire = encoded.to_bytes();
            assert_eq!(
                server_read(&wire).0,
                1,
                "{} became another number of commands: {:?}",
                command.name(),
                String::from_utf8_lossy(&wire)
            );
        }
    }
}

/// The small readers of server text: POP3 STAT/LIST/UIDL lines, CAPA lines, SMTP EHLO
/// extensions, modified UTF-7 mailbox names, base64 SASL payloads, OAuth2 SASL failures, APOP
/// timestamps. What they accept reads back as itself; what they hand on is what they promise.
pub fn reply_fields(data: &[u8]) {
    let line = data;

    if let Ok(stat) = pop3::Stat::parse(line) {
        let again = pop3::Stat::parse(format!("{} {}", stat.count, stat.octets).as_bytes());
        assert_eq!(again.ok(), Some(stat));
    }
    if let Ok(scan) = pop3::ScanListing::parse(line) {
        let again = pop3::ScanListing::parse(format!("{} {}", scan.msg, scan.octets).as_bytes());
        assert_eq!(again.ok(), Some(scan));
    }
    if let Ok(uidl) = pop3::UniqueIdListing::parse(line) {
        // RFC 1939 §7: 1 to 70 characters 0x21 to 0x7E.
        assert!(!uidl.unique_id.is_empty());
        assert!(
            uidl.unique_id.iter().all(|b| (0x21..=0x7e).contains(b)),
            "{:?}",
            uidl.unique_id
        );
    }

    let mut capa = pop3::Capabilities::new();
    for l in line.split(|&b| b == b'\n') {
        capa.push_line(l);
    }
    for mechanism in capa.sasl_mechanisms() {
        assert!(
            !mechanism.is_empty() && !mechanism.contains(&b' '),
            "{mechanism:?}"
        );
    }
    let _ = (
        capa.expire(),
        capa.login_delay(),
        capa.implementation(),
        capa.stls(),
    );

    let mut ehlo = b"250-mail.example.com\r\n".to_vec();
    for l in line.split(|&b| b == b'\n') {
        ehlo.extend_from_slice(b"250-");
        ehlo.extend_from_slice(l.strip_suffix(b"\r").unwrap_or(l));
        ehlo.extend_from_slice(b"\r\n");
    }
    ehlo.extend_from_slice(b"250 OK\r\n");
    if let Ok((_, reply)) = smtp::parse_reply(&ehlo, &Limits::dangerous_unlimited()) {
        if let Ok(extensions) = smtp::Extensions::from_reply(&reply) {
            for mechanism in extensions.auth_mechanisms() {
                assert!(
                    !mechanism.is_empty() && !mechanism.contains(&b' '),
                    "{mechanism:?}"
                );
            }
            let _ = (extensions.size(), extensions.starttls(), extensions.dsn());
        }
    }

    if let Ok(name) = imap::utf7::decode(line) {
        assert_eq!(
            imap::utf7::encode(&name).as_bytes(),
            line,
            "{name:?} is not the only reading of its encoding"
        );
    }

    if let Ok(bytes) = crate::core::sasl::decode(line) {
        let encoded = crate::core::sasl::encode(&bytes);
        assert_eq!(
            crate::core::sasl::decode(encoded.as_bytes()).ok(),
            Some(bytes)
        );
    }
    let failure = crate::core::sasl::OAuthFailure::from_challenge(line);
    let _ = format!("{failure:?}");

    let mut greeting = b"+OK ".to_vec();
    greeting.extend(line.iter().filter(|&&b| b != b'\r' && b != b'\n'));
    greeting.extend_from_slice(b"\r\n");
    let mut decoder = pop3::Decoder::new(Limits::pop3());
    if let Ok((_, pop3::Event::Status(status))) = decoder.decode(&greeting) {
        if let Some(stamp) = status.apop_timestamp() {
            assert!(stamp.starts_with(b"<") && stamp.ends_with(b">") && stamp.contains(&b'@'));
            assert!(stamp.iter().all(|b| (0x21..=0x7e).contains(b)), "{stamp:?}");
        }
    }
}
