//! Known-answer, refusal and injection tests of the IMAP command encoders.

use super::wire_check::{read_astring, server_read};
use super::*;
use proptest::prelude::*;

fn tag() -> Tag<'static> {
    Tag::new("A1").unwrap()
}

fn plain() -> EncodeOptions {
    EncodeOptions::default()
}

fn bytes(command: Command) -> Vec<u8> {
    command.encode(&tag(), &plain()).unwrap().to_bytes()
}

fn text(command: Command) -> String {
    String::from_utf8(bytes(command)).unwrap()
}

fn mailbox(name: &str) -> Mailbox {
    Mailbox::new(name).unwrap()
}

fn login(username: &str, password: &[u8]) -> Command {
    Command::Login {
        username: username.to_owned(),
        password: Secret::new(password),
    }
}

#[test]
fn simple_commands() {
    assert_eq!(text(Command::Capability), "A1 CAPABILITY\r\n");
    assert_eq!(text(Command::Noop), "A1 NOOP\r\n");
    assert_eq!(text(Command::Logout), "A1 LOGOUT\r\n");
    assert_eq!(text(Command::StartTls), "A1 STARTTLS\r\n");
    assert_eq!(text(Command::Close), "A1 CLOSE\r\n");
    assert_eq!(text(Command::Unselect), "A1 UNSELECT\r\n");
    assert_eq!(text(Command::Expunge), "A1 EXPUNGE\r\n");
    assert_eq!(text(Command::Idle), "A1 IDLE\r\n");
    assert_eq!(idle_done(), b"DONE\r\n");
}

#[test]
fn tags() {
    let mut tags = TagGenerator::new();
    assert_eq!(tags.next_tag().as_str(), "A0001");
    assert_eq!(tags.next_tag().as_str(), "A0002");
    let mut tags = TagGenerator::with_prefix("mc").unwrap();
    assert_eq!(tags.next_tag().to_string(), "mc0001");
    assert!(TagGenerator::with_prefix("A1").is_err());
    assert!(Tag::new("a.b]c").is_ok());
    for bad in [
        "", "+", "A+1", "A 1", "A(1", "A*", "A%", "A\"", "A\\", "A{", "A1\r\nA2",
    ] {
        assert!(Tag::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn login_forms() {
    assert_eq!(text(login("alice", b"secret")), "A1 LOGIN alice secret\r\n");
    assert_eq!(
        text(login("alice@example.org", b"two words")),
        "A1 LOGIN alice@example.org \"two words\"\r\n"
    );
    assert_eq!(
        text(login("alice", b"q\"b\\s")),
        "A1 LOGIN alice \"q\\\"b\\\\s\"\r\n"
    );
    assert_eq!(text(login("alice", b"")), "A1 LOGIN alice \"\"\r\n");
    assert_eq!(text(login("alice", b"NIL")), "A1 LOGIN alice \"NIL\"\r\n");
    // 8-bit: a literal, or quoted UTF-8 once UTF8=ACCEPT is on.
    let encoded = login("alice", "pässword".as_bytes())
        .encode(&tag(), &plain())
        .unwrap();
    assert_eq!(
        encoded.fragments(),
        &[
            Fragment::Line(b"A1 LOGIN alice {9}\r\n".to_vec()),
            Fragment::Literal {
                data: "pässword".as_bytes().to_vec(),
                sync: true
            },
            Fragment::Line(b"\r\n".to_vec()),
        ]
    );
    assert!(encoded.needs_continuation());
    let utf8 = EncodeOptions {
        utf8_accept: true,
        ..plain()
    };
    assert_eq!(
        login("alice", "pässword".as_bytes())
            .encode(&tag(), &utf8)
            .unwrap()
            .to_bytes(),
        "A1 LOGIN alice \"pässword\"\r\n".as_bytes()
    );
    assert_eq!(
        login("alice", b"\xff")
            .encode(&tag(), &utf8)
            .unwrap()
            .to_bytes(),
        b"A1 LOGIN alice {1}\r\n\xff\r\n"
    );
}

#[test]
fn password_injection_becomes_a_literal() {
    // threat model #27: the server reads 19 bytes of password, then the end of LOGIN.
    let encoded = login("alice", b"pw\r\nA2 DELETE INBOX")
        .encode(&tag(), &plain())
        .unwrap();
    assert_eq!(
        encoded.to_bytes(),
        b"A1 LOGIN alice {19}\r\npw\r\nA2 DELETE INBOX\r\n"
    );
    assert_eq!(
        server_read(&encoded.to_bytes()),
        (1, vec![b"pw\r\nA2 DELETE INBOX".to_vec()])
    );
    crate::assert_matches!(
        login("alice", b"pw\0").encode(&tag(), &plain()),
        Err(EncodeError::ForbiddenByte {
            field: "password",
            byte: 0,
            position: 2
        })
    );
}

#[test]
fn login_name_injection_is_refused() {
    assert_eq!(
        login("alice\r\nA2 DELETE INBOX", b"pw").encode(&tag(), &plain()),
        Err(EncodeError::ForbiddenByte {
            field: "login",
            byte: b'\r',
            position: 5
        })
    );
    assert_eq!(
        login("", b"pw").encode(&tag(), &plain()),
        Err(EncodeError::Empty { field: "login" })
    );
}

#[test]
fn literal_plus_and_minus() {
    let plus = EncodeOptions {
        literal_plus: true,
        ..plain()
    };
    let encoded = login("alice", b"a\nb").encode(&tag(), &plus).unwrap();
    assert!(!encoded.needs_continuation());
    assert_eq!(encoded.to_bytes(), b"A1 LOGIN alice {3+}\r\na\nb\r\n");

    let minus = EncodeOptions {
        literal_minus: true,
        ..plain()
    };
    let message = vec![b'x'; LITERAL_MINUS_MAX];
    let append = |message: Vec<u8>| Command::Append {
        mailbox: Mailbox::inbox(),
        flags: vec![],
        date: None,
        message,
    };
    let small = append(message.clone()).encode(&tag(), &minus).unwrap();
    assert!(small.to_bytes().starts_with(b"A1 APPEND INBOX {4096+}\r\n"));
    assert!(!small.needs_continuation());
    let mut big = message;
    big.push(b'x');
    let big = append(big).encode(&tag(), &minus).unwrap();
    assert!(big.to_bytes().starts_with(b"A1 APPEND INBOX {4097}\r\n"));
    assert!(big.needs_continuation());
}

#[test]
fn authenticate() {
    let auth = |mechanism: &str, ir: Option<&[u8]>| Command::Authenticate {
        mechanism: mechanism.to_owned(),
        initial_response: ir.map(Secret::new),
    };
    assert_eq!(text(auth("XOAUTH2", None)), "A1 AUTHENTICATE XOAUTH2\r\n");
    // RFC 4959 §4 example.
    assert_eq!(
        text(auth("PLAIN", Some(b"\0tim\0tanstaaftanstaaf"))),
        "A1 AUTHENTICATE PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
    );
    assert_eq!(
        text(auth("EXTERNAL", Some(b""))),
        "A1 AUTHENTICATE EXTERNAL =\r\n"
    );
    assert!(auth("PLAIN\r\nA2 LOGOUT", None)
        .encode(&tag(), &plain())
        .is_err());
    assert_eq!(
        sasl_response(b"\0tim\0tanstaaftanstaaf"),
        b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
    );
    assert_eq!(sasl_response(b""), b"\r\n");
    assert_eq!(sasl_cancel(), b"*\r\n");
    assert!(auth("PLAIN", None).is_sensitive());
    assert!(format!("{:?}", auth("PLAIN", Some(b"hunter2"))).contains("redacted"));
    assert!(!format!("{:?}", login("a", b"hunter2")).contains("hunter2"));
}

#[test]
fn id() {
    assert_eq!(text(Command::Id(None)), "A1 ID NIL\r\n");
    assert_eq!(text(Command::Id(Some(vec![]))), "A1 ID NIL\r\n");
    assert_eq!(
        text(Command::Id(Some(vec![
            ("name".into(), Some("mailcat".into())),
            ("version".into(), Some("0.1.0".into())),
            ("os".into(), None),
        ]))),
        "A1 ID (\"name\" \"mailcat\" \"version\" \"0.1.0\" \"os\" NIL)\r\n"
    );
    assert!(Command::Id(Some(vec![("a".repeat(31), None)]))
        .encode(&tag(), &plain())
        .is_err());
    assert!(
        Command::Id(Some(vec![("name".into(), Some("x".repeat(1025)))]))
            .encode(&tag(), &plain())
            .is_err()
    );
    assert!(
        Command::Id(Some(vec![("name".into(), Some("x\r\nA2 LOGOUT".into()))]))
            .encode(&tag(), &plain())
            .is_err()
    );
}

#[test]
fn enable() {
    assert_eq!(
        text(Command::Enable(vec![
            "UTF8=ACCEPT".into(),
            "CONDSTORE".into()
        ])),
        "A1 ENABLE UTF8=ACCEPT CONDSTORE\r\n"
    );
    assert!(Command::Enable(vec![]).encode(&tag(), &plain()).is_err());
    assert!(Command::Enable(vec!["A B".into()])
        .encode(&tag(), &plain())
        .is_err());
}

#[test]
fn list_and_lsub() {
    let list = |reference: &str, pattern: &str, special_use| Command::List {
        reference: ListPattern::new(reference).unwrap(),
        pattern: ListPattern::new(pattern).unwrap(),
        special_use,
    };
    assert_eq!(text(list("", "*", false)), "A1 LIST \"\" *\r\n");
    assert_eq!(text(list("", "%", false)), "A1 LIST \"\" %\r\n");
    assert_eq!(text(list("", "", false)), "A1 LIST \"\" \"\"\r\n");
    assert_eq!(
        text(list("", "*", true)),
        "A1 LIST \"\" * RETURN (SPECIAL-USE)\r\n"
    );
    assert_eq!(
        text(list("~smith/Mail/", "foo.*", false)),
        "A1 LIST ~smith/Mail/ foo.*\r\n"
    );
    assert_eq!(
        text(list("", "Entwürfe/%", false)),
        "A1 LIST \"\" Entw&APw-rfe/%\r\n"
    );
    assert_eq!(text(list("", "a b*", false)), "A1 LIST \"\" \"a b*\"\r\n");
    assert_eq!(
        text(Command::Lsub {
            reference: ListPattern::new("#news.").unwrap(),
            pattern: ListPattern::new("comp.mail.*").unwrap(),
        }),
        "A1 LSUB #news. comp.mail.*\r\n"
    );
}

#[test]
fn status() {
    assert_eq!(
        text(Command::Status {
            mailbox: mailbox("blurdybloop"),
            items: vec![StatusItem::UidNext, StatusItem::Messages],
        }),
        "A1 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n"
    );
    assert_eq!(
        text(Command::Status {
            mailbox: Mailbox::inbox(),
            items: vec![
                StatusItem::Recent,
                StatusItem::UidValidity,
                StatusItem::Unseen,
                StatusItem::Size,
                StatusItem::Deleted,
                StatusItem::HighestModSeq
            ],
        }),
        "A1 STATUS INBOX (RECENT UIDVALIDITY UNSEEN SIZE DELETED HIGHESTMODSEQ)\r\n"
    );
    assert!(Command::Status {
        mailbox: Mailbox::inbox(),
        items: vec![]
    }
    .encode(&tag(), &plain())
    .is_err());
}

#[test]
fn select_and_examine() {
    let select = |name: &str, params| Command::Select {
        mailbox: mailbox(name),
        params,
    };
    assert_eq!(
        text(select("inbox", SelectParams::None)),
        "A1 SELECT INBOX\r\n"
    );
    assert_eq!(
        text(select("Sent Items", SelectParams::CondStore)),
        "A1 SELECT \"Sent Items\" (CONDSTORE)\r\n"
    );
    // RFC 7162 §3.2.5.2 example.
    assert_eq!(
        text(select(
            "INBOX",
            SelectParams::QResync {
                uid_validity: NonZeroU32::new(67890007).unwrap(),
                mod_seq: NonZeroU64::new(20050715194045000).unwrap(),
                known_uids: Some("41,43:211,214:541".parse().unwrap()),
            }
        )),
        "A1 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n"
    );
    assert_eq!(
        text(Command::Examine {
            mailbox: mailbox("R&D"),
            params: SelectParams::None
        }),
        "A1 EXAMINE R&-D\r\n"
    );
    assert_eq!(
        text(Command::Create(mailbox("Archive/2024"))),
        "A1 CREATE Archive/2024\r\n"
    );
    assert_eq!(
        text(Command::Delete(mailbox("Old mail"))),
        "A1 DELETE \"Old mail\"\r\n"
    );
    assert_eq!(
        text(Command::Rename {
            from: mailbox("Drafts"),
            to: mailbox("Entwürfe")
        }),
        "A1 RENAME Drafts Entw&APw-rfe\r\n"
    );
}

#[test]
fn mailbox_quoting_and_utf8() {
    let select = |name: &str, options: &EncodeOptions| {
        Command::Select {
            mailbox: mailbox(name),
            params: SelectParams::None,
        }
        .encode(&tag(), options)
        .unwrap()
        .to_bytes()
    };
    assert_eq!(select("a\"b", &plain()), b"A1 SELECT \"a\\\"b\"\r\n");
    assert_eq!(select("a\\b", &plain()), b"A1 SELECT \"a\\\\b\"\r\n");
    assert_eq!(select("50%", &plain()), b"A1 SELECT \"50%\"\r\n");
    assert_eq!(select("NIL", &plain()), b"A1 SELECT \"NIL\"\r\n");
    assert_eq!(
        select("[Gmail]/Sent Mail", &plain()),
        b"A1 SELECT \"[Gmail]/Sent Mail\"\r\n"
    );
    assert_eq!(
        select("[Gmail]/All", &plain()),
        b"A1 SELECT [Gmail]/All\r\n"
    );
    assert_eq!(select("台北", &plain()), b"A1 SELECT &U,BTFw-\r\n");
    let utf8 = EncodeOptions {
        utf8_accept: true,
        ..plain()
    };
    assert_eq!(select("台北", &utf8), "A1 SELECT \"台北\"\r\n".as_bytes());
    assert_eq!(select("iNbOx", &utf8), b"A1 SELECT INBOX\r\n");
}

#[test]
fn append() {
    let message = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n".to_vec();
    let date = DateTime::new(Date::new(1996, 7, 17).unwrap(), 2, 44, 25, -420).unwrap();
    let encoded = Command::Append {
        mailbox: mailbox("Sent"),
        flags: vec![Flag::Seen, Flag::keyword("$Sent").unwrap()],
        date: Some(date),
        message: message.clone(),
    }
    .encode(&tag(), &plain())
    .unwrap();
    assert_eq!(
        encoded.fragments(),
        &[
            Fragment::Line(
                b"A1 APPEND Sent (\\Seen $Sent) \"17-Jul-1996 02:44:25 -0700\" {42}\r\n".to_vec()
            ),
            Fragment::Literal {
                data: message.clone(),
                sync: true
            },
            Fragment::Line(b"\r\n".to_vec()),
        ]
    );
    assert_eq!(
        format!("{:?}", encoded.fragments()[1]),
        "Literal { 42 bytes, sync: true }"
    );
    let bad = |message: &[u8]| Command::Append {
        mailbox: Mailbox::inbox(),
        flags: vec![],
        date: None,
        message: message.to_vec(),
    };
    assert_eq!(
        bad(b"a\0b").encode(&tag(), &plain()),
        Err(EncodeError::ForbiddenByte {
            field: "message",
            byte: 0,
            position: 1
        })
    );
    assert_eq!(
        bad(b"").encode(&tag(), &plain()),
        Err(EncodeError::Empty { field: "message" })
    );
}

#[test]
fn uid_commands() {
    let set: SequenceSet = "3:7,9".parse().unwrap();
    assert_eq!(
        text(Command::UidExpunge(set.clone())),
        "A1 UID EXPUNGE 3:7,9\r\n"
    );
    assert_eq!(
        text(Command::UidCopy {
            set: set.clone(),
            mailbox: mailbox("Archive")
        }),
        "A1 UID COPY 3:7,9 Archive\r\n"
    );
    assert_eq!(
        text(Command::UidMove {
            set: SequenceSet::all(),
            mailbox: mailbox("Deleted Items")
        }),
        "A1 UID MOVE 1:* \"Deleted Items\"\r\n"
    );
    let store = |mode, silent, flags| Command::UidStore {
        set: SequenceSet::single(4).unwrap(),
        mode,
        silent,
        flags,
    };
    assert_eq!(
        text(store(StoreMode::Add, true, vec![Flag::Deleted])),
        "A1 UID STORE 4 +FLAGS.SILENT (\\Deleted)\r\n"
    );
    assert_eq!(
        text(store(
            StoreMode::Remove,
            false,
            vec![Flag::Seen, Flag::Flagged]
        )),
        "A1 UID STORE 4 -FLAGS (\\Seen \\Flagged)\r\n"
    );
    assert_eq!(
        text(store(StoreMode::Replace, false, vec![])),
        "A1 UID STORE 4 FLAGS ()\r\n"
    );
}

#[test]
fn uid_fetch() {
    let fetch = |items, changed_since| Command::UidFetch {
        set: SequenceSet::from(100).unwrap(),
        items,
        changed_since,
    };
    assert_eq!(
        text(fetch(
            vec![
                FetchAttribute::Uid,
                FetchAttribute::Flags,
                FetchAttribute::InternalDate,
                FetchAttribute::Rfc822Size,
                FetchAttribute::Envelope,
                FetchAttribute::BodyStructure,
                FetchAttribute::ModSeq,
            ],
            NonZeroU64::new(12345)
        )),
        "A1 UID FETCH 100:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE MODSEQ) (CHANGEDSINCE 12345)\r\n"
    );
    let one = NonZeroU32::new(1).unwrap();
    let two = NonZeroU32::new(2).unwrap();
    assert_eq!(
        text(fetch(
            vec![
                FetchAttribute::BodyPeek {
                    section: Section::full(),
                    partial: None
                },
                FetchAttribute::BodyPeek {
                    section: Section::header_fields(["From", "Subject", "Message-ID"]),
                    partial: None
                },
                FetchAttribute::BodyPeek {
                    section: Section::text(),
                    partial: Some(Partial {
                        offset: 0,
                        length: NonZeroU32::new(1024).unwrap()
                    })
                },
            ],
            None
        )),
        "A1 UID FETCH 100:* (BODY.PEEK[] BODY.PEEK[HEADER.FIELDS (From Subject Message-ID)] BODY.PEEK[TEXT]<0.1024>)\r\n"
    );
    assert_eq!(
        text(fetch(
            vec![
                FetchAttribute::BodyPeek {
                    section: Section {
                        part: vec![one, two],
                        text: Some(SectionText::Mime)
                    },
                    partial: None
                },
                FetchAttribute::BodyPeek {
                    section: Section {
                        part: vec![two],
                        text: Some(SectionText::HeaderFieldsNot(vec!["Received".into()]))
                    },
                    partial: None
                },
                FetchAttribute::BodyPeek {
                    section: Section::header(),
                    partial: None
                },
                FetchAttribute::BinaryPeek {
                    part: vec![one, two],
                    partial: Some(Partial {
                        offset: 10,
                        length: two
                    })
                },
            ],
            None
        )),
        "A1 UID FETCH 100:* (BODY.PEEK[1.2.MIME] BODY.PEEK[2.HEADER.FIELDS.NOT (Received)] BODY.PEEK[HEADER] BINARY.PEEK[1.2]<10.2>)\r\n"
    );
    assert!(fetch(vec![], None).encode(&tag(), &plain()).is_err());
    let bad_section = |text| {
        fetch(
            vec![FetchAttribute::BodyPeek {
                section: Section {
                    part: vec![],
                    text: Some(text),
                },
                partial: None,
            }],
            None,
        )
        .encode(&tag(), &plain())
    };
    assert!(bad_section(SectionText::Mime).is_err());
    assert!(bad_section(SectionText::HeaderFields(vec![])).is_err());
    assert!(bad_section(SectionText::HeaderFields(vec!["X\r\nA2 LOGOUT".into()])).is_err());
    assert!(bad_section(SectionText::HeaderFields(vec!["Subject:".into()])).is_err());
}

#[test]
fn uid_search() {
    let search = |key, options: &EncodeOptions| {
        String::from_utf8(
            Command::UidSearch(key)
                .encode(&tag(), options)
                .unwrap()
                .to_bytes(),
        )
        .unwrap()
    };
    assert_eq!(search(SearchKey::All, &plain()), "A1 UID SEARCH ALL\r\n");
    let esearch = |key: SearchKey| {
        String::from_utf8(
            Command::UidSearchReturnAll(key)
                .encode(&tag(), &plain())
                .unwrap()
                .to_bytes(),
        )
        .unwrap()
    };
    assert_eq!(
        esearch(SearchKey::All),
        "A1 UID SEARCH RETURN (ALL) ALL\r\n"
    );
    assert_eq!(
        esearch(SearchKey::Header {
            field: "Subject".into(),
            value: "é".into()
        }),
        "A1 UID SEARCH RETURN (ALL) CHARSET UTF-8 HEADER Subject {2}\r\né\r\n"
    );
    assert_eq!(
        search(
            SearchKey::And(vec![
                SearchKey::Unseen,
                SearchKey::Uid("1:100".parse().unwrap()),
                SearchKey::Since(Date::new(2024, 3, 1).unwrap()),
                SearchKey::Before(Date::new(2024, 12, 24).unwrap()),
                SearchKey::Larger(1000),
                SearchKey::Smaller(50000),
            ]),
            &plain()
        ),
        "A1 UID SEARCH UNSEEN UID 1:100 SINCE 1-Mar-2024 BEFORE 24-Dec-2024 LARGER 1000 SMALLER 50000\r\n"
    );
    assert_eq!(
        search(
            SearchKey::Or(
                Box::new(SearchKey::Seen),
                Box::new(SearchKey::Not(Box::new(SearchKey::And(vec![
                    SearchKey::Seen,
                    SearchKey::All
                ]))))
            ),
            &plain()
        ),
        "A1 UID SEARCH OR SEEN NOT (SEEN ALL)\r\n"
    );
    let header = |field: &str, value: &str| SearchKey::Header {
        field: field.into(),
        value: value.into(),
    };
    assert_eq!(
        search(header("Message-ID", "<a@b>"), &plain()),
        "A1 UID SEARCH HEADER Message-ID <a@b>\r\n"
    );
    assert_eq!(
        search(header("X-Spam", ""), &plain()),
        "A1 UID SEARCH HEADER X-Spam \"\"\r\n"
    );
    assert_eq!(
        search(header("Subject", "Grüße"), &plain()),
        "A1 UID SEARCH CHARSET UTF-8 HEADER Subject {7}\r\nGrüße\r\n"
    );
    let utf8 = EncodeOptions {
        utf8_accept: true,
        ..plain()
    };
    assert_eq!(
        search(header("Subject", "Grüße"), &utf8),
        "A1 UID SEARCH HEADER Subject \"Grüße\"\r\n"
    );
    assert!(
        Command::UidSearch(header("Subject", "x\r\nA2 DELETE INBOX"))
            .encode(&tag(), &plain())
            .is_err()
    );
    assert!(Command::UidSearch(SearchKey::And(vec![]))
        .encode(&tag(), &plain())
        .is_err());
    let mut deep = SearchKey::All;
    for _ in 0..40 {
        deep = SearchKey::Not(Box::new(deep));
    }
    assert!(Command::UidSearch(deep).encode(&tag(), &plain()).is_err());
}

#[test]
fn mailbox_injection_is_refused_before_anything_is_built() {
    // threat model #28: a CR/LF in a mailbox name never reaches a command.
    assert!(Mailbox::new("INBOX\r\nA3 DELETE Sent").is_err());
    assert!(ListPattern::new("*\r\nA3 DELETE Sent").is_err());
}

proptest! {
    /// Whatever the password, the server reads exactly one command, and the password back.
    #[test]
    fn any_password_is_one_command(
        password in prop_oneof![
            proptest::collection::vec(1u8..=127, 0..64),
            proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'"'), Just(b'\\'), Just(b' '), Just(b'a')], 0..16),
            proptest::collection::vec(1u8..=255, 0..64),
        ],
        literal_plus in any::<bool>(),
        utf8_accept in any::<bool>(),
    ) {
        let options = EncodeOptions { literal_plus, literal_minus: false, utf8_accept };
        let wire = login("alice", &password).encode(&tag(), &options).unwrap().to_bytes();
        prop_assert_eq!(server_read(&wire).0, 1);
        let prefix = b"A1 LOGIN alice ";
        prop_assert!(wire.starts_with(prefix));
        let (value, end) = read_astring(&wire, prefix.len());
        prop_assert_eq!(&value, &password);
        prop_assert_eq!(&wire[end..], b"\r\n");
    }

    /// Any byte string: refused (with no output) or exactly one command.
    #[test]
    fn any_login_is_refused_or_one_command(
        username in proptest::collection::vec(any::<u8>(), 0..40),
        password in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let command = Command::Login {
            username: String::from_utf8_lossy(&username).into_owned(),
            password: Secret::new(password),
        };
        if let Ok(encoded) = command.encode(&tag(), &plain()) {
            prop_assert_eq!(server_read(&encoded.to_bytes()).0, 1);
        }
    }

    /// Any mailbox name: refused, or one command naming exactly that mailbox.
    #[test]
    fn any_mailbox_is_refused_or_round_trips(name in "\\PC*|[\\x00-\\x7f]*", utf8_accept in any::<bool>()) {
        let options = EncodeOptions { utf8_accept, ..EncodeOptions::default() };
        let Ok(mailbox) = Mailbox::new(name.clone()) else {
            prop_assert!(name.is_empty() || name.chars().any(|c| c.is_ascii_control()));
            return Ok(());
        };
        let wire = Command::Select { mailbox: mailbox.clone(), params: SelectParams::None }
            .encode(&tag(), &options).unwrap().to_bytes();
        prop_assert_eq!(server_read(&wire).0, 1);
        let prefix = b"A1 SELECT ";
        let (value, end) = read_astring(&wire, prefix.len());
        prop_assert_eq!(&wire[end..], b"\r\n");
        let decoded = if utf8_accept {
            String::from_utf8(value).unwrap()
        } else {
            crate::imap::utf7::decode(&value).unwrap()
        };
        if mailbox.is_inbox() {
            prop_assert_eq!(decoded, "INBOX");
        } else {
            prop_assert_eq!(decoded, name);
        }
    }

    /// Any header search value: one command, and CR/LF/NUL refused.
    #[test]
    fn any_search_value_is_refused_or_one_command(value in "\\PC*|[\\x00-\\x7f]*") {
        let command = Command::UidSearch(SearchKey::Header { field: "Subject".into(), value: value.clone() });
        match command.encode(&tag(), &plain()) {
            Ok(encoded) => prop_assert_eq!(server_read(&encoded.to_bytes()).0, 1),
            Err(_) => prop_assert!(value.contains(['\r', '\n', '\0'])),
        }
    }
}
