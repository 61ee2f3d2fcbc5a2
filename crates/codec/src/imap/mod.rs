//! IMAP (RFC 3501 IMAP4rev1, RFC 9051 IMAP4rev2, and the extensions a client session uses).
//!
//! Server bytes become [`Response`]s in two steps: the framer finds where one
//! response ends (lines, and literals jumped over by length), then complete parsers read it.
//! [`ResponseDecoder`] adds streaming: a message body literal larger than
//! [`crate::Limits::stream_threshold`] comes out as [`Event::BodyChunk`]s instead of being
//! buffered. A connection reads through it with the [`crate::Decode`] contract.
//!
//! ```text
//!  server bytes ─► framing ─► response / greeting parsers ─► Response<'buf>
//!                     └─ large FETCH body literal ─► BodyStart, BodyChunk*, BodyEnd
//! ```
//!
//! Client commands are built by [`command`]; mailbox names use [`utf7`].
//!
//! Lenient where real servers bend the grammar — each tolerance is documented where it is
//! accepted, names the server, and has a test vector named for it — and strict where leniency
//! would be a hole: literal lengths, NUL and bare CR/LF, nesting depth, number overflow.

pub mod command;
pub mod utf7;

mod body;
mod code;
mod decoder;
mod envelope;
mod fetch;
mod flag;
pub(crate) mod framing;
mod mailbox;
mod primitive;
mod response;
mod sequence;
mod tag;
mod uid_set;

pub use body::{
    BodyExtension, BodyParams, BodyStructure, Disposition, EncapsulatedMessage, MultiPart,
    SinglePart, MAX_NESTING,
};
pub use code::Code;
pub use decoder::{parse_greeting, parse_response, Event, ResponseDecoder};
pub use envelope::{Address, ImapEnvelope};
pub use fetch::{Fetch, FetchItem, Section, SectionData, SectionKind, SectionText};
pub use flag::{Flag, Keyword};
pub use mailbox::{
    MailboxList, MailboxName, MailboxStatus, NameAttribute, NameEncoding, Namespace,
    NamespaceDescription, StatusItem,
};
pub use response::{
    Capability, Data, ESearch, ESearchItem, Greeting, GreetingKind, IdParams, Response, StatusKind,
};
pub use sequence::{SeqNumber, SeqRange, SequenceSet};
pub use tag::{Tag, TagGenerator};
pub use uid_set::UidSet;
