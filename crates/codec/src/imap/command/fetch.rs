//! FETCH data items (RFC 3501 §6.4.5 / RFC 9051 §6.4.5: `fetch-att`, `section`; RFC 3516
//! `BINARY.PEEK`; RFC 7162 `MODSEQ`).
//!
//! Only the `.PEEK` forms of body sections are offered: fetching must not set `\Seen` behind the
//! user's back.

use std::num::NonZeroU32;

use super::search::check_header_field_name;
use super::string::{LineBreaks, Writer};
use crate::EncodeError;

/// A data item to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttribute {
    /// `UID`
    Uid,
    /// `FLAGS`
    Flags,
    /// `INTERNALDATE`
    InternalDate,
    /// `RFC822.SIZE`
    Rfc822Size,
    /// `ENVELOPE`
    Envelope,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `MODSEQ` (RFC 7162, needs CONDSTORE).
    ModSeq,
    /// `BODY.PEEK[section]<partial>`
    BodyPeek {
        /// Which part of the message.
        section: Section,
        /// Only these octets.
        partial: Option<Partial>,
    },
    /// `BINARY.PEEK[part]<partial>` (RFC 3516): the part with its transfer encoding undone.
    BinaryPeek {
        /// Part numbers, such as `[1, 2]` for `1.2`; empty for the whole message.
        part: Vec<NonZeroU32>,
        /// Only these octets.
        partial: Option<Partial>,
    },
}

/// `"<" number "." nz-number ">"`: `length` octets from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    /// First octet, from 0.
    pub offset: u32,
    /// How many octets.
    pub length: NonZeroU32,
}

/// `section = "[" [section-spec] "]"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// `section-part`: part numbers (`1.2.3`); empty for the whole message.
    pub part: Vec<NonZeroU32>,
    /// What of that part; `None` for all of it.
    pub text: Option<SectionText>,
}

/// `section-msgtext` / `section-text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (names)`
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (names)`
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`
    Text,
    /// `MIME`: the MIME header of a part (needs a part number).
    Mime,
}

impl Section {
    /// The whole message (`[]`).
    pub fn full() -> Self {
        Self::default()
    }

    /// The message header (`[HEADER]`).
    pub fn header() -> Self {
        Self {
            part: Vec::new(),
            text: Some(SectionText::Header),
        }
    }

    /// Some header fields (`[HEADER.FIELDS (From Subject)]`).
    pub fn header_fields<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self {
            part: Vec::new(),
            text: Some(SectionText::HeaderFields(
                names.into_iter().map(Into::into).collect(),
            )),
        }
    }

    /// The body without the header (`[TEXT]`).
    pub fn text() -> Self {
        Self {
            part: Vec::new(),
            text: Some(SectionText::Text),
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.raw(b"[");
        write_part(w, &self.part);
        if let Some(text) = &self.text {
            if !self.part.is_empty() {
                w.raw(b".");
            }
            match text {
                SectionText::Header => w.raw(b"HEADER"),
                SectionText::Text => w.raw(b"TEXT"),
                SectionText::Mime => {
                    if self.part.is_empty() {
                        return Err(EncodeError::Invalid {
                            field: "body section",
                            reason: "MIME needs a part number (RFC 3501 §6.4.5)",
                        });
                    }
                    w.raw(b"MIME");
                }
                SectionText::HeaderFields(names) | SectionText::HeaderFieldsNot(names) => {
                    if names.is_empty() {
                        return Err(EncodeError::Empty {
                            field: "header field list",
                        });
                    }
                    if matches!(text, SectionText::HeaderFields(_)) {
                        w.raw(b"HEADER.FIELDS (");
                    } else {
                        w.raw(b"HEADER.FIELDS.NOT (");
                    }
                    for (i, name) in names.iter().enumerate() {
                        check_header_field_name(name)?;
                        if i > 0 {
                            w.sp();
                        }
                        w.astring("header field name", name.as_bytes(), LineBreaks::Refuse)?;
                    }
                    w.raw(b")");
                }
            }
        }
        w.raw(b"]");
        Ok(())
    }
}

fn write_part(w: &mut Writer<'_>, part: &[NonZeroU32]) {
    for (i, n) in part.iter().enumerate() {
        if i > 0 {
            w.raw(b".");
        }
        w.display(n);
    }
}

fn write_partial(w: &mut Writer<'_>, partial: &Option<Partial>) {
    if let Some(p) = partial {
        w.display(format_args!("<{}.{}>", p.offset, p.length));
    }
}

impl FetchAttribute {
    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            Self::Uid => w.raw(b"UID"),
            Self::Flags => w.raw(b"FLAGS"),
            Self::InternalDate => w.raw(b"INTERNALDATE"),
            Self::Rfc822Size => w.raw(b"RFC822.SIZE"),
            Self::Envelope => w.raw(b"ENVELOPE"),
            Self::BodyStructure => w.raw(b"BODYSTRUCTURE"),
            Self::ModSeq => w.raw(b"MODSEQ"),
            Self::BodyPeek { section, partial } => {
                w.raw(b"BODY.PEEK");
                section.write(w)?;
                write_partial(w, partial);
            }
            Self::BinaryPeek { part, partial } => {
                w.raw(b"BINARY.PEEK[");
                write_part(w, part);
                w.raw(b"]");
                write_partial(w, partial);
            }
        }
        Ok(())
    }
}
