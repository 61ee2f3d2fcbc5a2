//! IMAP command encoders (RFC 3501, RFC 9051, and the extensions a client session uses:
//! RFC 2971 ID, RFC 4959 SASL-IR, RFC 5161 ENABLE, RFC 6154 SPECIAL-USE, RFC 6851 MOVE,
//! RFC 7162 CONDSTORE/QRESYNC, RFC 7888 LITERAL+/LITERAL-, RFC 3691 UNSELECT, RFC 2177 IDLE,
//! RFC 3516 BINARY, RFC 4315 UIDPLUS, RFC 6855 UTF8=ACCEPT).
//!
//! A [`Command`] is encoded with a [`Tag`] and the [`EncodeOptions`] the session learned from the
//! server into an [`Encoded`]: a list of [`Fragment`]s. A command with a synchronising literal
//! cannot be sent in one write: the client sends the line ending in `{N}` CRLF, waits for the
//! server's `+` continuation, then sends the literal and the rest of the command:
//!
//! ```text
//! C: A1 LOGIN alice {7}         Fragment::Line
//! S: + Ready for literal data
//! C: pw"\<CR><LF>x              Fragment::Literal { sync: true }
//! C: <CR><LF>                   Fragment::Line
//! S: A1 OK LOGIN completed
//! ```
//!
//! User values cannot inject a second command (threat model #27, #28): every value is an atom, a
//! quoted string or a literal as its bytes demand, CR, LF and NUL are refused with an [`EncodeError`] naming the field, and on error nothing is
//! produced. Per field:
//!
//! | field | CR / LF | NUL | 8-bit |
//! |---|---|---|---|
//! | password (LOGIN) | sent in a literal: the server reads N bytes | refused | literal, or quoted with UTF8=ACCEPT |
//! | login, header search values, ID values | refused | refused | literal, or quoted with UTF8=ACCEPT |
//! | mailbox names, LIST patterns | refused, as every control character | refused | modified UTF-7, or UTF-8 with UTF8=ACCEPT |
//! | APPEND message | kept (it is a literal) | refused (`literal8` is not sent) | kept |
//! | keywords, capabilities, SASL mechanisms | refused: atoms only | refused | refused |

mod fetch;
mod flag;
mod search;
mod string;

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};

pub use super::flag::{Flag, Keyword};
pub use super::sequence::{SeqNumber, SeqRange, SequenceSet};
pub use super::tag::{Tag, TagGenerator};
pub use crate::core::secret::Secret;
pub(crate) use crate::core::secret::{
    check_mechanism, push_initial_response, response_line, CANCEL_LINE,
};
pub use fetch::{FetchAttribute, Partial, Section, SectionText};
pub use search::{Date, DateTime, SearchKey, MAX_SEARCH_DEPTH};
pub use string::{ListPattern, Mailbox, LITERAL_MINUS_MAX};

use string::{LineBreaks, Writer};

use super::primitive::check_atom;

use crate::EncodeError;

/// What the server allows, as far as encoding goes. The default (all off) is always safe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// `LITERAL+` (RFC 7888): every literal may be non-synchronising (`{N+}`).
    pub literal_plus: bool,
    /// `LITERAL-` (RFC 7888): literals up to 4096 octets may be non-synchronising.
    pub literal_minus: bool,
    /// `UTF8=ACCEPT` has been enabled (RFC 6855): UTF-8 in quoted strings and mailbox names.
    pub utf8_accept: bool,
}

/// A piece of an encoded command, to be written in order.
#[derive(Clone, PartialEq, Eq)]
pub enum Fragment {
    /// Command text, ending in CRLF, or in `{N}` CRLF / `{N+}` CRLF when a literal follows.
    Line(Vec<u8>),
    /// Literal data. When `sync` is true the client must wait for the server's `+` continuation
    /// before sending it (and give up the command if the server answers with a tagged response).
    Literal {
        /// The literal's bytes.
        data: Vec<u8>,
        /// Whether a continuation request must be awaited first.
        sync: bool,
    },
}

impl fmt::Debug for Fragment {
    /// Lengths only: a fragment may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(line) => write!(f, "Line({} bytes)", line.len()),
            Self::Literal { data, sync } => {
                write!(f, "Literal {{ {} bytes, sync: {sync} }}", data.len())
            }
        }
    }
}

/// An encoded command: one or more fragments, the last a line ending in CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    fragments: Vec<Fragment>,
}

impl Encoded {
    /// The fragments, in sending order.
    pub fn fragments(&self) -> &[Fragment] {
        &self.fragments
    }

    /// The fragments, owned.
    pub fn into_fragments(self) -> Vec<Fragment> {
        self.fragments
    }

    /// True when some literal needs the server's `+` before it can be sent.
    pub fn needs_continuation(&self) -> bool {
        self.fragments
            .iter()
            .any(|f| matches!(f, Fragment::Literal { sync: true, .. }))
    }

    /// All fragments concatenated: the bytes the server finally receives.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for fragment in &self.fragments {
            match fragment {
                Fragment::Line(line) => out.extend_from_slice(line),
                Fragment::Literal { data, .. } => out.extend_from_slice(data),
            }
        }
        out
    }
}

/// A STATUS data item (RFC 3501 §6.3.10, RFC 9051 §6.3.11, RFC 7162 `HIGHESTMODSEQ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// `MESSAGES`
    Messages,
    /// `RECENT` (IMAP4rev1 only)
    Recent,
    /// `UIDNEXT`
    UidNext,
    /// `UIDVALIDITY`
    UidValidity,
    /// `UNSEEN`
    Unseen,
    /// `SIZE` (RFC 8438 / RFC 9051)
    Size,
    /// `DELETED` (RFC 9051)
    Deleted,
    /// `HIGHESTMODSEQ` (RFC 7162)
    HighestModSeq,
}

impl StatusItem {
    fn name(self) -> &'static str {
        match self {
            Self::Messages => "MESSAGES",
            Self::Recent => "RECENT",
            Self::UidNext => "UIDNEXT",
            Self::UidValidity => "UIDVALIDITY",
            Self::Unseen => "UNSEEN",
            Self::Size => "SIZE",
            Self::Deleted => "DELETED",
            Self::HighestModSeq => "HIGHESTMODSEQ",
        }
    }
}

/// SELECT / EXAMINE parameters (RFC 7162 §3.1.8, §3.2.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SelectParams {
    /// None.
    #[default]
    None,
    /// `(CONDSTORE)`
    CondStore,
    /// `(QRESYNC (uidvalidity modseq [known-uids]))`
    QResync {
        /// The UIDVALIDITY the client remembers.
        uid_validity: NonZeroU32,
        /// The last HIGHESTMODSEQ the client saw.
        mod_seq: NonZeroU64,
        /// The UIDs the client knows, if it wants to say.
        known_uids: Option<SequenceSet>,
    },
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
    /// `FLAGS`: replace.
    Replace,
}

/// RFC 2971 §3.3: field strings at most 30 octets, values at most 1024, at most 30 pairs.
const ID_MAX_FIELD: usize = 30;
const ID_MAX_VALUE: usize = 1024;
const ID_MAX_PAIRS: usize = 30;

/// A client command. Build it from checked values; [`Command::encode`] refuses what cannot be
/// sent safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `STARTTLS`
    StartTls,
    /// `LOGIN username password`
    Login {
        /// The user name (CR, LF and NUL refused).
        username: String,
        /// The password (sent as a literal if it holds CR or LF; NUL refused).
        password: Secret,
    },
    /// `AUTHENTICATE mechanism [initial-response]` (SASL-IR, RFC 4959, when the response is
    /// given: the payload is base64-encoded here, an empty one sent as `=`).
    Authenticate {
        /// The SASL mechanism, such as `PLAIN` or `XOAUTH2`.
        mechanism: String,
        /// The initial response, raw (not base64).
        initial_response: Option<Secret>,
    },
    /// `ID (field value ...)` or `ID NIL` (RFC 2971); `None` sends `NIL`, a `None` value `NIL`.
    Id(Option<Vec<(String, Option<String>)>>),
    /// `ENABLE capability ...` (RFC 5161), e.g. `UTF8=ACCEPT`, `CONDSTORE`, `QRESYNC`.
    Enable(Vec<String>),
    /// `LIST reference pattern [RETURN (SPECIAL-USE)]`
    List {
        /// The reference name (usually empty).
        reference: ListPattern,
        /// The pattern, with `*` and `%` wildcards.
        pattern: ListPattern,
        /// Ask for special-use attributes (RFC 6154 §5.2, needs `SPECIAL-USE`).
        special_use: bool,
    },
    /// `LSUB reference pattern`
    Lsub {
        /// The reference name.
        reference: ListPattern,
        /// The pattern.
        pattern: ListPattern,
    },
    /// `STATUS mailbox (items)`
    Status {
        /// The mailbox.
        mailbox: Mailbox,
        /// The items; at least one.
        items: Vec<StatusItem>,
    },
    /// `SELECT mailbox [params]`
    Select {
        /// The mailbox.
        mailbox: Mailbox,
        /// CONDSTORE / QRESYNC.
        params: SelectParams,
    },
    /// `EXAMINE mailbox [params]` (read-only SELECT)
    Examine {
        /// The mailbox.
        mailbox: Mailbox,
        /// CONDSTORE / QRESYNC.
        params: SelectParams,
    },
    /// `CREATE mailbox`
    Create(Mailbox),
    /// `DELETE mailbox`
    Delete(Mailbox),
    /// `RENAME mailbox new-name`
    Rename {
        /// The mailbox to rename.
        from: Mailbox,
        /// Its new name.
        to: Mailbox,
    },
    /// `APPEND mailbox [(flags)] [date-time] literal`
    Append {
        /// Where to store the message.
        mailbox: Mailbox,
        /// Flags to set; none are sent when empty.
        flags: Vec<Flag<'static>>,
        /// Internal date to set.
        date: Option<DateTime>,
        /// The RFC 5322 message, CRLF line endings (NUL refused).
        message: Vec<u8>,
    },
    /// `CLOSE`
    Close,
    /// `UNSELECT` (RFC 3691)
    Unselect,
    /// `EXPUNGE`
    Expunge,
    /// `UID EXPUNGE set` (RFC 4315)
    UidExpunge(SequenceSet),
    /// `UID SEARCH [CHARSET UTF-8] key` (the charset added when a string is not ASCII and
    /// `UTF8=ACCEPT` is off)
    UidSearch(SearchKey),
    /// `UID SEARCH RETURN (ALL) key` (ESEARCH, RFC 4731): the answer is one `* ESEARCH` with
    /// the UIDs as ranges (`ALL 1:1000000`), not every number
    UidSearchReturnAll(SearchKey),
    /// `UID FETCH set (items) [(CHANGEDSINCE modseq)]`
    UidFetch {
        /// Which messages, by UID.
        set: SequenceSet,
        /// What to fetch; at least one item.
        items: Vec<FetchAttribute>,
        /// Only messages changed since this mod-sequence (RFC 7162 §3.1.4.1).
        changed_since: Option<NonZeroU64>,
    },
    /// `UID STORE set [+|-]FLAGS[.SILENT] (flags)`
    UidStore {
        /// Which messages, by UID.
        set: SequenceSet,
        /// Add, remove or replace.
        mode: StoreMode,
        /// `.SILENT`: no untagged FETCH back.
        silent: bool,
        /// The flags.
        flags: Vec<Flag<'static>>,
    },
    /// `UID COPY set mailbox`
    UidCopy {
        /// Which messages, by UID.
        set: SequenceSet,
        /// The destination.
        mailbox: Mailbox,
    },
    /// `UID MOVE set mailbox` (RFC 6851)
    UidMove {
        /// Which messages, by UID.
        set: SequenceSet,
        /// The destination.
        mailbox: Mailbox,
    },
    /// `IDLE` (RFC 2177); end it with [`idle_done`].
    Idle,
}

impl Command {
    /// The command word(s), for traces and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Capability => "CAPABILITY",
            Self::Noop => "NOOP",
            Self::Logout => "LOGOUT",
            Self::StartTls => "STARTTLS",
            Self::Login { .. } => "LOGIN",
            Self::Authenticate { .. } => "AUTHENTICATE",
            Self::Id(_) => "ID",
            Self::Enable(_) => "ENABLE",
            Self::List { .. } => "LIST",
            Self::Lsub { .. } => "LSUB",
            Self::Status { .. } => "STATUS",
            Self::Select { .. } => "SELECT",
            Self::Examine { .. } => "EXAMINE",
            Self::Create(_) => "CREATE",
            Self::Delete(_) => "DELETE",
            Self::Rename { .. } => "RENAME",
            Self::Append { .. } => "APPEND",
            Self::Close => "CLOSE",
            Self::Unselect => "UNSELECT",
            Self::Expunge => "EXPUNGE",
            Self::UidExpunge(_) => "UID EXPUNGE",
            Self::UidSearch(_) | Self::UidSearchReturnAll(_) => "UID SEARCH",
            Self::UidFetch { .. } => "UID FETCH",
            Self::UidStore { .. } => "UID STORE",
            Self::UidCopy { .. } => "UID COPY",
            Self::UidMove { .. } => "UID MOVE",
            Self::Idle => "IDLE",
        }
    }

    /// True when the encoded command carries a credential: a trace must redact its arguments.
    pub fn is_sensitive(&self) -> bool {
        matches!(self, Self::Login { .. } | Self::Authenticate { .. })
    }

    /// Encodes the command with `tag`. On error nothing is produced.
    pub fn encode(&self, tag: &Tag<'_>, options: &EncodeOptions) -> Result<Encoded, EncodeError> {
        let mut w = Writer::new(options);
        w.raw(tag.as_str().as_bytes());
        w.sp();
        w.raw(self.name().as_bytes());
        self.write_arguments(&mut w)?;
        Ok(w.finish())
    }

    fn write_arguments(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            Self::Capability
            | Self::Noop
            | Self::Logout
            | Self::StartTls
            | Self::Close
            | Self::Unselect
            | Self::Expunge
            | Self::Idle => {}
            Self::Login { username, password } => {
                if username.is_empty() {
                    return Err(EncodeError::Empty { field: "login" });
                }
                w.sp();
                w.astring("login", username.as_bytes(), LineBreaks::Refuse)?;
                w.sp();
                w.astring("password", password.expose(), LineBreaks::AsLiteral)?;
            }
            Self::Authenticate {
                mechanism,
                initial_response,
            } => {
                check_mechanism(mechanism)?;
                w.sp();
                w.raw(mechanism.as_bytes());
                if let Some(response) = initial_response {
                    let mut encoded = Vec::new();
                    push_initial_response(&mut encoded, response.expose());
                    w.sp();
                    w.raw(&encoded);
                }
            }
            Self::Id(None) => w.raw(b" NIL"),
            Self::Id(Some(pairs)) => {
                if pairs.len() > ID_MAX_PAIRS {
                    return Err(EncodeError::TooLong {
                        field: "ID parameter list",
                        len: pairs.len(),
                        limit: ID_MAX_PAIRS,
                    });
                }
                if pairs.is_empty() {
                    // RFC 2971 §4: an empty list is not allowed; `NIL` says the same.
                    w.raw(b" NIL");
                    return Ok(());
                }
                w.raw(b" (");
                for (i, (field, value)) in pairs.iter().enumerate() {
                    check_len("ID field", field.len(), ID_MAX_FIELD)?;
                    if i > 0 {
                        w.sp();
                    }
                    w.string("ID field", field.as_bytes())?;
                    w.sp();
                    match value {
                        Some(value) => {
                            check_len("ID value", value.len(), ID_MAX_VALUE)?;
                            w.string("ID value", value.as_bytes())?;
                        }
                        None => w.raw(b"NIL"),
                    }
                }
                w.raw(b")");
            }
            Self::Enable(capabilities) => {
                if capabilities.is_empty() {
                    return Err(EncodeError::Empty {
                        field: "ENABLE capability list",
                    });
                }
                for capability in capabilities {
                    check_atom("capability", capability.as_bytes())?;
                    w.sp();
                    w.raw(capability.as_bytes());
                }
            }
            Self::List {
                reference,
                pattern,
                special_use,
            } => {
                w.sp();
                w.reference(reference)?;
                w.sp();
                w.list_mailbox(pattern)?;
                if *special_use {
                    w.raw(b" RETURN (SPECIAL-USE)");
                }
            }
            Self::Lsub { reference, pattern } => {
                w.sp();
                w.reference(reference)?;
                w.sp();
                w.list_mailbox(pattern)?;
            }
            Self::Status { mailbox, items } => {
                if items.is_empty() {
                    return Err(EncodeError::Empty {
                        field: "STATUS item list",
                    });
                }
                w.sp();
                w.mailbox(mailbox)?;
                let names: Vec<&str> = items.iter().map(|i| i.name()).collect();
                w.display(format_args!(" ({})", names.join(" ")));
            }
            Self::Select { mailbox, params } | Self::Examine { mailbox, params } => {
                w.sp();
                w.mailbox(mailbox)?;
                match params {
                    SelectParams::None => {}
                    SelectParams::CondStore => w.raw(b" (CONDSTORE)"),
                    SelectParams::QResync {
                        uid_validity,
                        mod_seq,
                        known_uids,
                    } => {
                        w.display(format_args!(" (QRESYNC ({uid_validity} {mod_seq}"));
                        if let Some(known) = known_uids {
                            w.display(format_args!(" {known}"));
                        }
                        w.raw(b"))");
                    }
                }
            }
            Self::Create(mailbox) | Self::Delete(mailbox) => {
                w.sp();
                w.mailbox(mailbox)?;
            }
            Self::Rename { from, to } => {
                w.sp();
                w.mailbox(from)?;
                w.sp();
                w.mailbox(to)?;
            }
            Self::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                if message.is_empty() {
                    return Err(EncodeError::Empty { field: "message" });
                }
                if let Some(position) = message.iter().position(|&b| b == 0) {
                    return Err(EncodeError::ForbiddenByte {
                        field: "message",
                        byte: 0,
                        position,
                    });
                }
                w.sp();
                w.mailbox(mailbox)?;
                if !flags.is_empty() {
                    w.sp();
                    flag::write_flag_list(w, flags)?;
                }
                if let Some(date) = date {
                    w.display(format_args!(" {date}"));
                }
                w.sp();
                w.literal(message);
            }
            Self::UidExpunge(set) => w.display(format_args!(" {set}")),
            Self::UidSearch(key) | Self::UidSearchReturnAll(key) => {
                w.sp();
                if matches!(self, Self::UidSearchReturnAll(_)) {
                    // RFC 4731 §3: the return options come before CHARSET.
                    w.raw(b"RETURN (ALL) ");
                }
                if !w.options().utf8_accept && key.has_non_ascii(0) {
                    // RFC 3501 §6.4.4: strings in another charset than US-ASCII need CHARSET.
                    // With UTF8=ACCEPT, RFC 6855 §3 makes UTF-8 the default instead.
                    w.raw(b"CHARSET UTF-8 ");
                }
                key.write(w, 0)?;
            }
            Self::UidFetch {
                set,
                items,
                changed_since,
            } => {
                if items.is_empty() {
                    return Err(EncodeError::Empty {
                        field: "FETCH item list",
                    });
                }
                w.display(format_args!(" {set} ("));
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        w.sp();
                    }
                    item.write(w)?;
                }
                w.raw(b")");
                if let Some(mod_seq) = changed_since {
                    w.display(format_args!(" (CHANGEDSINCE {mod_seq})"));
                }
            }
            Self::UidStore {
                set,
                mode,
                silent,
                flags,
            } => {
                let sign = match mode {
                    StoreMode::Add => "+",
                    StoreMode::Remove => "-",
                    StoreMode::Replace => "",
                };
                let silent = if *silent { ".SILENT" } else { "" };
                w.display(format_args!(" {set} {sign}FLAGS{silent} "));
                flag::write_flag_list(w, flags)?;
            }
            Self::UidCopy { set, mailbox } | Self::UidMove { set, mailbox } => {
                w.display(format_args!(" {set} "));
                w.mailbox(mailbox)?;
            }
        }
        Ok(())
    }
}

fn check_len(field: &'static str, len: usize, limit: usize) -> Result<(), EncodeError> {
    if len > limit {
        return Err(EncodeError::TooLong { field, len, limit });
    }
    Ok(())
}

/// `DONE` CRLF: ends IDLE (RFC 2177 §3).
pub fn idle_done() -> &'static [u8] {
    b"DONE\r\n"
}

/// A SASL continuation response (RFC 3501 §6.2.2): `payload` base64-encoded, then CRLF; an
/// empty payload gives an empty line.
pub fn sasl_response(payload: &[u8]) -> Vec<u8> {
    response_line(payload)
}

/// `*` CRLF: cancels an AUTHENTICATE exchange (the server answers BAD).
pub fn sasl_cancel() -> &'static [u8] {
    CANCEL_LINE
}

#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod wire_check;
