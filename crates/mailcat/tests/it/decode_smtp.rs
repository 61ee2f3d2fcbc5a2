//! `mailcat decode smtp`, run as a process: server bytes on stdin, one JSON line per reply on
//! stdout, errors on stderr with exit code 65.

use serde_json::{json, Value};

use crate::support;

use support::Run;

fn decode_in_pieces(input: &[u8], piece: Option<usize>) -> Run {
    support::decode_in_pieces("smtp", input, piece)
}

fn decode(input: &[u8]) -> Run {
    support::decode("smtp", input)
}

const GMAIL_ID: &str = "d9443c01a7336-21c4a7a1bd2sm12345675ad.123 - gsmtp";

/// The expected JSON lines for `vectors/gmail_session.smtp`.
fn gmail_session_json() -> Vec<Value> {
    let extensions = [
        "SIZE 35882577",
        "8BITMIME",
        "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
        "ENHANCEDSTATUSCODES",
        "PIPELINING",
        "CHUNKING",
        "SMTPUTF8",
    ];
    let mut ehlo_lines = vec!["smtp.gmail.com at your service, [198.51.100.7]"];
    ehlo_lines.extend(extensions);
    let keywords: Vec<Value> = extensions
        .iter()
        .map(|line| {
            let mut words = line.split(' ');
            let keyword = words.next();
            json!({"keyword": keyword, "params": words.collect::<Vec<_>>()})
        })
        .collect();
    vec![
        json!({"code": 220, "enhanced": null,
               "lines": [format!("smtp.gmail.com ESMTP {GMAIL_ID}")]}),
        json!({"code": 250, "enhanced": null, "lines": ehlo_lines, "extensions": extensions,
               "keywords": keywords, "size": 35882577,
               "auth": ["LOGIN", "PLAIN", "XOAUTH2", "PLAIN-CLIENTTOKEN", "OAUTHBEARER", "XOAUTH"]}),
        json!({"code": 235, "enhanced": "2.7.0", "lines": ["2.7.0 Accepted"]}),
        json!({"code": 250, "enhanced": "2.1.0", "lines": [format!("2.1.0 OK {GMAIL_ID}")]}),
        json!({"code": 550, "enhanced": "5.1.1", "lines": [
            "5.1.1 The email account that you tried to reach does not exist. Please try",
            "5.1.1 double-checking the recipient's email address for typos or",
            "5.1.1 unnecessary spaces. For more information, go to",
            format!("5.1.1  https://support.google.com/mail/?p=NoSuchUser {GMAIL_ID}"),
        ]}),
        json!({"code": 221, "enhanced": "2.0.0",
               "lines": [format!("2.0.0 closing connection {GMAIL_ID}")]}),
    ]
}

#[test]
fn gmail_session_greeting_ehlo_and_replies() {
    let run = decode(include_bytes!("vectors/gmail_session.smtp"));
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
    assert_eq!(run.values, gmail_session_json());
}

#[test]
fn any_split_of_the_session_gives_the_same_output() {
    let input = include_bytes!("vectors/gmail_session.smtp");
    for piece in [1, 5] {
        let run = decode_in_pieces(input, Some(piece));
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(run.values, gmail_session_json(), "pieces of {piece} bytes");
    }
}

#[test]
fn outlook_basic_auth_disabled_535() {
    let line = "5.7.139 Authentication unsuccessful, basic authentication is disabled. \
                [BN9PR03CA0123.namprd03.prod.outlook.com 2024-01-01T00:00:00.000Z 08DC0000000000]";
    let run = decode(format!("535 {line}\r\n").as_bytes());
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.values,
        [json!({"code": 535, "enhanced": "5.7.139", "lines": [line]})]
    );
}

#[test]
fn ehlo_size_without_limit_and_old_style_auth() {
    let run = decode(
        b"250-mail.example.com Hello [198.51.100.7]\r\n250-SIZE\r\n\
250-AUTH=LOGIN PLAIN\r\n250-AUTH LOGIN PLAIN CRAM-MD5\r\n250 STARTTLS\r\n",
    );
    assert_eq!(run.code, Some(0));
    let ehlo = &run.values[0];
    assert_eq!(ehlo["size"], Value::Null);
    assert_eq!(ehlo["auth"], json!(["LOGIN", "PLAIN", "CRAM-MD5"]));
    assert_eq!(
        ehlo["extensions"],
        json!([
            "SIZE",
            "AUTH=LOGIN PLAIN",
            "AUTH LOGIN PLAIN CRAM-MD5",
            "STARTTLS"
        ])
    );
}

#[test]
fn single_line_250_and_other_multi_line_replies_have_no_extensions() {
    let run = decode(b"250 mail.example.com\r\n220-banner\r\n220 ready\r\n");
    assert_eq!(run.code, Some(0));
    assert!(run.values.iter().all(|v| v.get("extensions").is_none()));
    assert_eq!(run.values[1]["lines"], json!(["banner", "ready"]));
}

#[test]
fn code_alone_is_a_line_with_empty_text() {
    let run = decode(b"354\r\n");
    assert_eq!(
        run.values,
        [json!({"code": 354, "enhanced": null, "lines": [""]})]
    );
}

#[test]
fn non_utf8_text_is_escaped() {
    let run = decode(b"554 5.7.1 r\xe9fus\xe9\r\n");
    assert_eq!(run.code, Some(0));
    assert_eq!(run.values[0]["lines"], json!(["5.7.1 r\\xe9fus\\xe9"]));
}

#[test]
fn bad_reply_code_is_malformed() {
    let run = decode(b"2x0 hi\r\n");
    assert_eq!(run.code, Some(65));
    assert!(run.values.is_empty());
    assert_eq!(
        run.stderr,
        "mailcat: malformed SMTP input: invalid server response at byte 1: \
         expected a reply code whose second digit is 0 to 5\n"
    );
}

#[test]
fn code_change_inside_a_reply_is_malformed() {
    let run = decode(b"220 hi\r\n250-a\r\n251 b\r\n");
    assert_eq!(run.code, Some(65));
    assert_eq!(run.values.len(), 1);
    assert_eq!(
        run.stderr,
        "mailcat: malformed SMTP input: invalid server response at byte 15: \
         expected the same reply code as the reply's first line\n"
    );
}

#[test]
fn truncated_continuation_is_malformed() {
    let run = decode(b"220 hi\r\n250-a\r\n");
    assert_eq!(run.code, Some(65));
    assert_eq!(
        run.values,
        [json!({"code": 220, "enhanced": null, "lines": ["hi"]})]
    );
    assert_eq!(
        run.stderr,
        "mailcat: malformed SMTP input: the stream ended inside an SMTP reply (after byte 8)\n"
    );
    let run = decode(b"250 no crlf");
    assert_eq!(run.code, Some(65));
    assert!(run.stderr.contains("ended inside an SMTP reply"));
}

#[test]
fn overlong_line_is_malformed() {
    let mut input = b"250 ".to_vec();
    input.extend(std::iter::repeat_n(b'a', 600));
    let run = decode(&input);
    assert_eq!(run.code, Some(65));
    assert!(
        run.stderr.contains("longer than the limit of 512 bytes"),
        "{}",
        run.stderr
    );
}

#[test]
fn empty_input_is_fine() {
    let run = decode(b"");
    assert_eq!((run.code, run.values.len()), (Some(0), 0));
}

#[test]
fn nul_in_a_reply_is_refused_at_its_offset() {
    let run = decode(b"220 mx ready\r\n250-mx\r\n250 X\0Y\r\n");
    assert_eq!(run.code, Some(65));
    assert_eq!(run.values.len(), 1);
    assert!(
        run.stderr
            .contains("at byte 27: expected no NUL byte in a reply line"),
        "{}",
        run.stderr
    );
}

#[test]
fn vendor_ehlo_keywords_each_with_their_parameters() {
    let run = decode(
        b"250-mx.example.com Hello [198.51.100.7]\r\n250-X_LINK2STATE\r\n250-XEXCH50\r\n\
250-X-EXPS  GSSAPI NTLM\r\n250-AUTH=LOGIN PLAIN\r\n250-SIZE 1000\r\n250 CHUNKING\r\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.values[0]["keywords"],
        json!([
            {"keyword": "X_LINK2STATE", "params": []},
            {"keyword": "XEXCH50", "params": []},
            {"keyword": "X-EXPS", "params": ["GSSAPI", "NTLM"]},
            {"keyword": "AUTH", "params": ["LOGIN", "PLAIN"]},
            {"keyword": "SIZE", "params": ["1000"]},
            {"keyword": "CHUNKING", "params": []},
        ])
    );
    assert_eq!(run.values[0]["size"], 1000);
    assert_eq!(run.values[0]["auth"], json!(["LOGIN", "PLAIN"]));
}

fn after(commands: &[&str], input: &[u8]) -> Run {
    let mut args = vec!["smtp"];
    for command in commands {
        args.extend(["--after", command]);
    }
    support::decode_with(&args, input)
}

#[test]
fn after_each_reply_must_fit_its_command() {
    let session =
        b"220 mx ESMTP\r\n250-mx\r\n250 PIPELINING\r\n334 VXNlcm5hbWU6\r\n235 2.7.0 ok\r\n\
250 2.1.0 ok\r\n354 go on\r\n250 2.0.0 queued\r\n221 bye\r\n";
    let commands = [
        "EHLO me",
        "AUTH LOGIN",
        "MAIL FROM:<a@example.org>",
        "DATA",
        "QUIT",
    ];
    let run = after(&commands, session);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values.len(), 8);
    // The same replies without the greeting.
    let run = after(&commands, &session[14..]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // A 220 answering EHLO.
    let run = after(&["NOOP", "EHLO me"], b"250 ok\r\n220 mx ESMTP\r\n");
    assert_eq!(run.code, Some(65));
    assert!(
        run.stderr
            .contains("at byte 8: expected 250, 4xx or 5xx answering EHLO or HELO"),
        "{}",
        run.stderr
    );
    // A reply too many.
    let run = after(&["NOOP"], b"220 mx\r\n250 ok\r\n250 ok\r\n");
    assert_eq!(run.code, Some(65));
    assert!(run.stderr.contains("at byte 16:"), "{}", run.stderr);
}
