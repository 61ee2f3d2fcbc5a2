//! `mailcat decode imap`, run as a process: server bytes on stdin, one JSON line per response,
//! errors on stderr with exit code 65, and a 1 GiB FETCH literal in bounded memory.

use crate::support;

use std::io::Write;

use serde_json::{json, Value};

fn decode(input: &[u8]) -> support::Run {
    support::decode("imap", input)
}

/// A Dovecot session: greeting, LOGIN, SELECT, UID FETCH, LOGOUT.
const DOVECOT_SESSION: &[u8] = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n\
A1 OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE SORT UIDPLUS MOVE CONDSTORE] Logged in\r\n\
* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n\
* 2 EXISTS\r\n\
* 0 RECENT\r\n\
* OK [UIDVALIDITY 1732612345] UIDs valid\r\n\
* OK [UIDNEXT 3] Predicted next UID\r\n\
A2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n\
* 1 FETCH (UID 1 RFC822.SIZE 12 FLAGS (\\Seen) BODY[] {12}\r\nHello\r\nWorld)\r\n\
* 2 FETCH (UID 2 RFC822.SIZE 3 FLAGS () BODY[HEADER.FIELDS (SUBJECT)] {3}\r\nS\r\n BODY[TEXT]<0> \"x\")\r\n\
A3 OK Fetch completed (0.001 + 0.000 secs).\r\n\
* BYE Logging out\r\n\
A4 OK Logout completed (0.001 + 0.000 secs).\r\n";

#[test]
fn dovecot_session_prints_one_object_per_response() {
    let run = decode(DOVECOT_SESSION);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values.len(), 14);
    assert_eq!(
        run.values[0],
        json!({"kind": "untagged", "tag": null, "type": "OK", "status": "OK", "code": "CAPABILITY",
               "capabilities": ["IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+", "AUTH=PLAIN"],
               "text": "Dovecot ready."})
    );
    assert_eq!(run.values[1]["kind"], "tagged");
    assert_eq!(run.values[1]["tag"], "A1");
    assert_eq!(run.values[1]["capabilities"][7], "MOVE");
    assert_eq!(run.values[2]["type"], "FLAGS");
    assert_eq!(run.values[3]["flags"][5], "\\*");
    assert_eq!(
        run.values[4],
        json!({"kind": "untagged", "tag": null, "type": "EXISTS", "count": 2})
    );
    assert_eq!(run.values[6]["code"], "UIDVALIDITY");
    assert_eq!(run.values[6]["code_value"], 1732612345u32);
    assert_eq!(run.values[8]["code"], "READ-WRITE");
    assert_eq!(
        run.values[9],
        json!({"kind": "untagged", "tag": null, "type": "FETCH", "seq": 1, "uid": 1, "flags": ["\\Seen"],
               "rfc822_size": 12, "sections": [{"name": "BODY[]", "len": 12}]})
    );
    assert_eq!(
        run.values[10]["sections"],
        json!([{"name": "BODY[HEADER.FIELDS (SUBJECT)]", "len": 3}, {"name": "BODY[TEXT]", "len": 1, "origin": 0}])
    );
    assert_eq!(run.values[12]["status"], "BYE");
    assert_eq!(
        run.values[13]["text"],
        "Logout completed (0.001 + 0.000 secs)."
    );
}

#[test]
fn any_split_of_the_session_gives_the_same_output() {
    let whole = decode(DOVECOT_SESSION).values;
    for piece in [1, 7, 64] {
        assert_eq!(
            support::decode_in_pieces("imap", DOVECOT_SESSION, Some(piece)).values,
            whole,
            "pieces of {piece}"
        );
    }
}

#[test]
fn list_names_are_decoded_from_modified_utf7() {
    let run = decode(b"* LIST (\\HasNoChildren \\Sent) \"/\" \"&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-\"\r\n* LIST (\\Noselect) NIL \"[Gmail]\"\r\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values[0]["mailbox"], "Отправленные");
    assert_eq!(
        run.values[0]["attributes"],
        json!(["\\HasNoChildren", "\\Sent"])
    );
    assert_eq!(run.values[1]["delimiter"], Value::Null);
}

#[test]
fn continuation_and_status_with_trailing_space() {
    // Exchange puts a space before the closing parenthesis of STATUS; some servers send a bare `+`.
    let run = decode(b"* STATUS INBOX (MESSAGES 3 UIDNEXT 9 )\r\n+\r\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values[0]["items"], json!({"MESSAGES": 3, "UIDNEXT": 9}));
    assert_eq!(
        run.values[1],
        json!({"kind": "continuation", "tag": null, "type": "CONTINUATION", "code": null, "text": ""})
    );
}

#[test]
fn malformed_input_names_the_offset_and_exits_65() {
    let run = decode(b"* OK fine\r\n* 1 FETCH (UID \"a\0b\")\r\n");
    assert_eq!(run.code, Some(65));
    assert_eq!(
        run.values.len(),
        1,
        "the good response before the error is still printed"
    );
    assert!(
        run.stderr
            .starts_with("mailcat: malformed IMAP input: invalid server response at byte "),
        "{}",
        run.stderr
    );
}

#[test]
fn literal_bomb_is_refused_before_allocation() {
    let run = decode(b"* 1 FETCH (BODY[] {18446744073709551615}\r\n");
    assert_eq!(run.code, Some(65));
    assert!(run.stderr.contains("exceeds the limit"), "{}", run.stderr);
}

#[test]
fn stream_ending_inside_a_literal_is_malformed() {
    let run = decode(b"* 1 FETCH (BODY[] {10}\r\nabc");
    assert_eq!(run.code, Some(65));
    assert!(
        run.stderr.contains("ended inside a literal"),
        "{}",
        run.stderr
    );
}

/// A 1 GiB FETCH body streams through in bounded memory; the JSON reports its length.
#[test]
fn one_gib_fetch_literal_decodes_in_bounded_memory() {
    const LEN: u64 = 1 << 30;
    let run = support::decode_streamed("imap", |stdin| {
        stdin.write_all(b"* OK ready\r\n").expect("write");
        stdin
            .write_all(
                format!("* 1 FETCH (UID 42 RFC822.SIZE {LEN} BODY[] {{{LEN}}}\r\n").as_bytes(),
            )
            .expect("write");
        let block = b"0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ!\r\n"
            .repeat(16 * 1024);
        let mut left = LEN as usize;
        while left > 0 {
            let n = left.min(block.len());
            stdin.write_all(&block[..n]).expect("write");
            left -= n;
        }
        stdin
            .write_all(b" FLAGS (\\Seen))\r\nA1 OK done\r\n")
            .expect("write");
    });
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.peak_kib > 0 && run.peak_kib < 64 * 1024,
        "peak resident set {} KiB is over 64 MiB",
        run.peak_kib
    );
    assert_eq!(
        run.values[1],
        json!({"kind": "untagged", "tag": null, "type": "FETCH", "seq": 1, "uid": 42, "flags": ["\\Seen"],
               "rfc822_size": LEN, "sections": [{"name": "BODY[]", "len": LEN}]})
    );
    assert_eq!(run.values[2]["status"], "OK");
}

/// What real servers send where the RFCs say otherwise, in one capture: each decodes, and the
/// JSON shows the facts a user looks for.
#[test]
fn real_server_quirks_decode_and_show_their_facts() {
    let run = decode(
        b"* OK [CAPABILITY IMAP4rev1 APPENDLIMIT=35651584 CONDSTORE] ready\r\n\
*  CAPABILITY IMAP4rev1 APPENDLIMIT\r\n\
* OK [HIGHESTMODSEQ 7]\r\n\
* OK [HIGHESTMODSEQ 8]Highest\r\n\
* OK [X-VENDOR a b] text\r\n\
* STATUS INBOX (MESSAGES 2 APPENDLIMIT NIL HIGHESTMODSEQ 9)\r\n\
* STATUS Sent (APPENDLIMIT 1000)\r\n\
* FLAGS (\\Seen $Label[1] foo]bar)\r\n\
* 1  FETCH (UID 5  FLAGS (\\Seen $X[y]) BODYSTRUCTURE (\"text\" NIL NIL NIL NIL \"7bit\" 12 1))\r\n\
* 2 FETCH (BODYSTRUCTURE (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 100 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (NIL NIL NIL NIL NIL NIL 0 0) 5))\r\n\
* 3 FETCH (BODYSTRUCTURE (\"mixed\" (\"boundary\" \"b\") NIL NIL))\r\n\
A1  OK  [READ-WRITE]  done\r\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let v = &run.values;
    assert_eq!(v[0]["appendlimit"], 35651584);
    assert_eq!(v[1]["appendlimit"], Value::Null);
    assert!(v[1].get("appendlimit").is_some(), "{}", v[1]);
    assert_eq!(
        (&v[2]["code"], &v[2]["code_value"], &v[2]["text"]),
        (&json!("HIGHESTMODSEQ"), &json!(7), &json!(""))
    );
    assert_eq!(
        (&v[3]["code_value"], &v[3]["text"]),
        (&json!(8), &json!("Highest"))
    );
    assert_eq!(
        (&v[4]["code"], &v[4]["code_text"]),
        (&json!("X-VENDOR"), &json!("a b"))
    );
    assert_eq!(
        v[5]["items"],
        json!({"MESSAGES": 2, "APPENDLIMIT": null, "HIGHESTMODSEQ": 9})
    );
    assert_eq!(v[6]["items"], json!({"APPENDLIMIT": 1000}));
    assert_eq!(v[7]["flags"], json!(["\\Seen", "$Label[1]", "foo]bar"]));
    assert_eq!(v[8]["uid"], 5);
    assert_eq!(v[8]["flags"], json!(["\\Seen", "$X[y]"]));
    assert_eq!(
        v[8]["bodystructure"],
        json!({"type": "text/", "size": 12, "lines": 1})
    );
    assert_eq!(
        v[9]["bodystructure"],
        json!({"type": "message/rfc822", "size": 100, "lines": 5,
               "message": {"type": "/", "size": 0, "lines": 0}})
    );
    assert_eq!(
        v[10]["bodystructure"],
        json!({"type": "multipart/mixed", "parts": []})
    );
    assert_eq!(
        (&v[11]["tag"], &v[11]["code"], &v[11]["text"]),
        (&json!("A1"), &json!("READ-WRITE"), &json!("done"))
    );
}

fn after(commands: &[&str], input: &[u8]) -> support::Run {
    let mut args = vec!["imap"];
    for command in commands {
        args.extend(["--after", command]);
    }
    support::decode_with(&args, input)
}

#[test]
fn after_a_tag_never_sent_or_already_completed_is_refused() {
    let greeting = b"* OK ready\r\n";
    let run = after(
        &["A1 NOOP", "A2 CAPABILITY"],
        b"* OK ready\r\n* CAPABILITY IMAP4rev1\r\nA2 OK done\r\nA1 OK done\r\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for input in [
        [&greeting[..], b"A9 OK done\r\n"].concat(),
        [&greeting[..], b"A1 OK done\r\nA1 OK again\r\n"].concat(),
    ] {
        let run = after(&["A1 NOOP"], &input);
        assert_eq!(run.code, Some(65));
        assert!(
            run.stderr
                .contains("expected the tag of a command named by --after"),
            "{}",
            run.stderr
        );
    }
    let run = after(&["A1 NOOP"], greeting);
    assert_eq!(run.code, Some(65));
    assert!(
        run.stderr.contains("a tagged response to every command"),
        "{}",
        run.stderr
    );
    let run = after(&["NOOP"], b"");
    assert_eq!(run.code, Some(64));
    assert!(run.stderr.contains("starts with its tag"), "{}", run.stderr);
}

#[test]
fn after_utf8_accept_strings_must_be_utf8() {
    // Before ENABLED, 8-bit names are tolerated (163.com sends them unasked).
    let run = decode(b"* LIST () \"/\" \"caf\xe9\"\r\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = decode(
        "* ENABLED UTF8=ACCEPT\r\n* LIST () \"/\" \"café\"\r\n* 1 FETCH (ENVELOPE (NIL \"Grüße\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
            .as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values[1]["mailbox"], "café");
    for (input, offset) in [
        (&b"* ENABLED UTF8=ACCEPT\r\n* LIST () \"/\" \"caf\xe9\"\r\n"[..], 41),
        (b"* ENABLED UTF8=ACCEPT\r\n* STATUS \"\xff\" (MESSAGES 1)\r\n", 33),
        (
            b"* ENABLED UTF8=ACCEPT\r\n* 1 FETCH (ENVELOPE (NIL \"Gr\xfc\xdfe\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
            51,
        ),
    ] {
        let run = decode(input);
        assert_eq!(run.code, Some(65), "{input:?}");
        assert!(
            run.stderr.contains(&format!(
                "at byte {offset}: expected UTF-8 in a string once UTF8=ACCEPT is enabled"
            )),
            "{}",
            run.stderr
        );
    }
    // A message body may carry any octet.
    let run = decode(b"* ENABLED UTF8=ACCEPT\r\n* 1 FETCH (BODY[] {2}\r\n\xff\xfe)\r\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn nul_outside_a_literal_is_refused_at_its_offset_but_not_inside_one() {
    let run = decode(b"* OK hi\r\n* OK a\0b\r\n");
    assert_eq!(run.code, Some(65));
    assert!(
        run.stderr
            .contains("at byte 15: expected no NUL byte outside a literal"),
        "{}",
        run.stderr
    );
    let run = decode(b"* 1 FETCH (BODY[] {3}\r\na\0b)\r\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.values[0]["sections"][0]["len"], 3);
}
