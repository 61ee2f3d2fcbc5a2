//! `mailcat decode pop3`, run as a process: server bytes on stdin, JSON lines on stdout, errors
//! on stderr with exit code 65, and bounded memory on a large RETR body.

use std::io::Write;

use serde_json::{json, Value};

use crate::support;

use support::Run;

fn decode_in_pieces(input: &[u8], piece: Option<usize>) -> Run {
    support::decode_in_pieces("pop3", input, piece)
}

fn decode(input: &[u8]) -> Run {
    support::decode("pop3", input)
}

/// The expected JSON lines for `vectors/dovecot_session.pop3`.
fn dovecot_session_json() -> Vec<Value> {
    let retr_body = "Return-Path: <alice@example.org>\r\nFrom: Alice <alice@example.org>\r\n\
Subject: dots\r\n\r\n.x\r\n.\r\nend\r\n";
    let capa =
        "CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nUSER\r\n\
SASL PLAIN LOGIN\r\n";
    vec![
        json!({"ok": true, "text": "Dovecot (Ubuntu) ready. <7a1.1.5ea8b4f2@mail.example.org>",
               "lines": [], "apop": "<7a1.1.5ea8b4f2@mail.example.org>"}),
        json!({"ok": true, "text": "", "octets": capa.len(), "line_count": 9,
               "lines": ["CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE",
                         "STLS", "USER", "SASL PLAIN LOGIN"]}),
        json!({"ok": true, "text": "", "lines": []}),
        json!({"ok": true, "text": "Logged in.", "lines": []}),
        json!({"ok": true, "text": "2 320", "lines": []}),
        json!({"ok": true, "text": "2 messages:", "lines": ["1 120", "2 200"],
               "octets": 14, "line_count": 2}),
        json!({"ok": true, "text": "", "lines": ["1 000000013c4bd4e1", "2 000000023c4bd4e1"],
               "octets": 40, "line_count": 2}),
        json!({"ok": true, "text": "120 octets", "lines": [], "message": true,
               "octets": retr_body.len(), "line_count": 7}),
        json!({"ok": true, "text": "Marked to be deleted.", "lines": []}),
        json!({"ok": true, "text": "Logging out, messages deleted.", "lines": []}),
    ]
}

#[test]
fn dovecot_session_from_greeting_to_quit() {
    let run = decode(include_bytes!("vectors/dovecot_session.pop3"));
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
    assert_eq!(run.values, dovecot_session_json());
}

#[test]
fn any_split_of_the_session_gives_the_same_output() {
    let input = include_bytes!("vectors/dovecot_session.pop3");
    let whole = decode(input);
    for piece in [1, 7] {
        let split = decode_in_pieces(input, Some(piece));
        assert_eq!(split.code, Some(0), "{}", split.stderr);
        assert_eq!(split.values, whole.values, "pieces of {piece} bytes");
    }
}

#[test]
fn err_with_in_use_response_code() {
    let run = decode(b"-ERR [IN-USE] Unable to lock maildrop: Mailbox is locked by POP server\r\n");
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.values,
        [json!({"ok": false, "code": "IN-USE", "lines": [],
                "text": "Unable to lock maildrop: Mailbox is locked by POP server"})]
    );
    let run = decode(b"+OK hi\r\n-ERR [SYS/TEMP/QUOTA] later\r\n");
    assert_eq!(run.values[1]["code"], "SYS/TEMP/QUOTA");
}

#[test]
fn ok_at_the_end_of_input_is_single_line() {
    let run = decode(b"+OK Logging out.\r\n");
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.values,
        [json!({"ok": true, "text": "Logging out.", "lines": []})]
    );
}

#[test]
fn ok_then_dot_is_an_empty_block() {
    let run = decode(b"+OK 0 messages:\r\n.\r\n+OK\r\n");
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.values,
        [
            json!({"ok": true, "text": "0 messages:", "lines": [], "octets": 0, "line_count": 0}),
            json!({"ok": true, "text": "", "lines": []}),
        ]
    );
}

#[test]
fn sasl_continuations() {
    // Gmail's "+ " (empty challenge), a LOGIN-style challenge, and Dovecot's bare "+".
    let run = decode(b"+OK ready\r\n+ \r\n+ VXNlcm5hbWU6\r\n+\r\n+OK Logged in.\r\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.values,
        [
            json!({"ok": true, "text": "ready", "lines": []}),
            json!({"continuation": true, "text": ""}),
            json!({"continuation": true, "text": "VXNlcm5hbWU6"}),
            json!({"continuation": true, "text": ""}),
            json!({"ok": true, "text": "Logged in.", "lines": []}),
        ]
    );
}

#[test]
fn apop_only_on_the_greeting() {
    let run = decode(b"+OK <1.2@host>\r\n+OK <3.4@host>\r\n");
    assert_eq!(run.values[0]["apop"], "<1.2@host>");
    assert!(run.values[1].get("apop").is_none());
}

#[test]
fn non_utf8_text_is_escaped() {
    let run = decode(b"-ERR caf\xe9\r\n+OK\r\nline \xff\r\n.\r\n");
    assert_eq!(run.code, Some(0));
    assert_eq!(run.values[0]["text"], "caf\\xe9");
    assert_eq!(run.values[1]["lines"], json!(["line \\xff"]));
}

#[test]
fn body_lines_longer_than_a_status_line_are_fine() {
    let mut input = b"+OK\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'a', 20_000));
    input.extend_from_slice(b"\r\n.\r\n");
    let run = decode(&input);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values[0]["octets"], 20_002);
    assert_eq!(run.values[0]["line_count"], 1);
    assert_eq!(run.values[0]["truncated"], true);
    assert_eq!(run.values[0]["lines"][0].as_str().map(str::len), Some(1000));
}

#[test]
fn imap_greeting_is_malformed() {
    let run = decode(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n");
    assert_eq!(run.code, Some(65));
    assert!(run.values.is_empty());
    assert_eq!(
        run.stderr,
        "mailcat: malformed POP3 input: invalid server response at byte 0: \
         expected +OK, -ERR or a \"+ \" continuation\n"
    );
}

#[test]
fn malformed_offset_counts_from_the_start_of_the_stream() {
    // After a -ERR a status line must follow; "* BYE" starts at byte 13.
    let run = decode(b"+OK\r\n-ERR x\r\n* BYE\r\n");
    assert_eq!(run.code, Some(65));
    assert_eq!(run.values.len(), 2);
    assert!(
        run.stderr.contains("invalid server response at byte 13"),
        "{}",
        run.stderr
    );
}

#[test]
fn truncated_body_is_malformed() {
    let run = decode(b"+OK ready\r\n+OK 120 octets\r\nSubject: cut\r\n\r\npartial");
    assert_eq!(run.code, Some(65));
    // The greeting is printed; the cut-off message is not.
    assert_eq!(
        run.values,
        [json!({"ok": true, "text": "ready", "lines": []})]
    );
    assert!(
        run.stderr.starts_with(
            "mailcat: malformed POP3 input: the stream ended inside a multi-line response body"
        ),
        "{}",
        run.stderr
    );
    // Cut just before the terminator's LF.
    let run = decode(b"+OK\r\nbody\r\n.\r");
    assert_eq!(run.code, Some(65));
    assert!(run.stderr.contains("ended inside"), "{}", run.stderr);
}

#[test]
fn truncated_status_line_is_malformed() {
    let run = decode(b"+OK hi\r\n+OK no crlf");
    assert_eq!(run.code, Some(65));
    assert_eq!(run.values.len(), 1);
    assert!(
        run.stderr.contains("ended inside a status line"),
        "{}",
        run.stderr
    );
}

/// A 200 MB RETR body streams through in bounded memory, and its counts are exact.
///
/// The peak resident set is read while the child is still alive: stdin stays open after the
/// last byte is written, so the child has processed (nearly) everything and waits for EOF.
#[cfg(target_os = "linux")]
#[test]
fn large_retr_body_decodes_in_bounded_memory() {
    const TARGET: usize = 200 * 1000 * 1000;
    // One block of whole lines, some dot-stuffed, repeated.
    let mut block = Vec::new();
    let mut block_lines = 0u64;
    let mut block_dots = 0u64;
    while block.len() < 1 << 20 {
        if block_lines % 10 == 9 {
            block.extend_from_slice(b"..a line that starts with a dot once unstuffed\r\n");
            block_dots += 1;
        } else {
            block.extend_from_slice(
                format!("line {block_lines:07} of a large message body, some text to fill it\r\n")
                    .as_bytes(),
            );
        }
        block_lines += 1;
    }
    let repeats = TARGET.div_ceil(block.len()) as u64;

    let written = block.clone();
    let run = support::decode_streamed("pop3", move |stdin| {
        stdin.write_all(b"+OK message follows\r\n").expect("write");
        for _ in 0..repeats {
            stdin.write_all(&written).expect("write");
        }
        stdin.write_all(b".\r\n+OK bye\r\n").expect("write");
    });
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.peak_kib > 0 && run.peak_kib < 64 * 1024,
        "peak resident set {} KiB is over 64 MiB",
        run.peak_kib
    );
    let values = run.values;
    assert_eq!(values.len(), 2);
    let body = &values[0];
    // Every byte written, minus one dot for each stuffed line.
    assert_eq!(body["octets"], (block.len() as u64 - block_dots) * repeats);
    assert_eq!(body["line_count"], block_lines * repeats);
    assert_eq!(body["truncated"], true);
    assert_eq!(body["lines"].as_array().map(Vec::len), Some(1000));
    assert_eq!(
        body["lines"][9],
        ".a line that starts with a dot once unstuffed"
    );
    assert_eq!(values[1], json!({"ok": true, "text": "bye", "lines": []}));
}

#[test]
fn nul_in_a_status_line_is_refused_at_its_offset_but_not_in_a_message() {
    let run = decode(b"+OK ready\r\n-ERR no\0pe\r\n");
    assert_eq!(run.code, Some(65));
    assert_eq!(run.values.len(), 1);
    assert!(
        run.stderr
            .contains("at byte 18: expected no NUL byte in a status or listing line"),
        "{}",
        run.stderr
    );
    let run = decode(b"+OK ready\r\n+OK 5 octets\r\na\0b\r\n.\r\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

fn after(commands: &[&str], input: &[u8]) -> Run {
    let mut args = vec!["pop3"];
    for command in commands {
        args.extend(["--after", command]);
    }
    support::decode_with(&args, input)
}

#[test]
fn after_stat_the_reply_must_be_two_numbers() {
    // Without the greeting, and with it (a capture from the connection).
    for input in [
        &b"+OK 2 320\r\n"[..],
        b"+OK Dovecot ready.\r\n+OK 2 320\r\n",
    ] {
        let run = after(&["STAT"], input);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let stat = run.values.last().expect("a reply");
        assert_eq!((&stat["count"], &stat["octets"]), (&json!(2), &json!(320)));
    }
    for (input, offset) in [
        (&b"+OK ready\r\n+OK two 320\r\n"[..], 15),
        (b"+OK ready\r\n+OK -2 320\r\n", 15),
        (b"+OK ready\r\n+OK 2\r\n", 16),
    ] {
        let run = after(&["STAT"], input);
        assert_eq!(run.code, Some(65), "{input:?}");
        assert!(
            run.stderr.contains(&format!("at byte {offset}:")),
            "{input:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn after_list_a_negative_size_is_refused_at_its_offset() {
    let run = after(
        &["LIST"],
        b"+OK ready\r\n+OK 2 msgs\r\n1 120\r\n2 -5\r\n.\r\n",
    );
    assert_eq!(run.code, Some(65));
    assert!(run.stderr.contains("at byte 32:"), "{}", run.stderr);
    // A NUL in a listing line (known as one from --after) is refused too.
    let run = after(&["LIST"], b"+OK\r\n1 2\0\r\n.\r\n");
    assert_eq!(run.code, Some(65));
    assert!(
        run.stderr.contains("at byte 8: expected no NUL byte"),
        "{}",
        run.stderr
    );
    let run = after(
        &["LIST", "UIDL 2"],
        b"+OK 2 msgs\r\n1 120\r\n2 5\r\n.\r\n+OK 2 QQ5x\r\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values[0]["lines"], json!(["1 120", "2 5"]));
    assert_eq!(
        (&run.values[1]["msg"], &run.values[1]["unique_id"]),
        (&json!(2), &json!("QQ5x"))
    );
}

#[test]
fn message_bodies_are_never_printed_only_their_lengths() {
    let message = b"+OK 31 octets\r\nSubject: x\r\n\r\nsecret text\r\n.\r\n";
    for run in [decode(message), after(&["RETR 1"], message)] {
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(
            run.values[0],
            json!({"ok": true, "text": "31 octets", "lines": [], "message": true,
                   "octets": 27, "line_count": 3})
        );
    }
    // Named by --after, even a body without a header section is a message.
    let run = after(&["TOP 1 0"], b"+OK\r\nplain line\r\n.\r\n");
    assert_eq!(run.values[0]["lines"], json!([]));
    assert_eq!(run.values[0]["message"], true);
}

#[test]
fn after_one_reply_more_or_less_than_the_commands_is_refused() {
    let run = after(&["NOOP"], b"+OK ready\r\n+OK\r\n+OK\r\n");
    assert_eq!(run.code, Some(65));
    assert!(run.stderr.contains("no more replies"), "{}", run.stderr);
    let run = after(&["STAT", "NOOP"], b"+OK 1 2\r\n");
    assert_eq!(run.code, Some(65));
    assert!(
        run.stderr
            .contains("a reply to every command named by --after"),
        "{}",
        run.stderr
    );
}

#[test]
fn after_auth_challenges_belong_to_auth_and_nowhere_else() {
    let run = after(
        &["AUTH PLAIN", "STAT"],
        b"+OK ready\r\n+ \r\n+OK Logged in.\r\n+OK 0 0\r\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values[1]["continuation"], true);
    let run = after(&["USER alice"], b"+OK ready\r\n+ \r\n");
    assert_eq!(run.code, Some(65));
    // AUTH without a mechanism lists them.
    let run = after(&["AUTH"], b"+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values[0]["lines"], json!(["PLAIN", "LOGIN"]));
}
