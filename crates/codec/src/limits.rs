//! Limits on everything a server can make the client buffer.
//!
//! Every decoder takes a [`Limits`]; going past one is a named [`crate::DecodeError`], never an
//! allocation. "No limit" is a named, documented choice: [`Limits::dangerous_unlimited`].

/// The bounds a decoder enforces. The defaults are per protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest line, CRLF included (RFC 5321 §4.5.3.1.5: 512 for an SMTP reply line).
    pub max_line: usize,
    /// Largest literal kept in memory as part of a response (IMAP), checked before allocation.
    pub max_literal: u64,
    /// Literals of message bodies larger than this are streamed in chunks instead of buffered.
    pub stream_threshold: u64,
    /// Largest message body that may be streamed (IMAP FETCH body section, POP3 RETR).
    pub max_message: u64,
    /// Largest response held in memory, streamed bodies excluded.
    pub max_response: usize,
    /// Deepest nesting of parenthesised lists (IMAP BODYSTRUCTURE, ENVELOPE ...).
    pub max_depth: usize,
    /// Most lines in one multi-line response held in memory (SMTP replies, POP3 listings).
    pub max_lines: usize,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

impl Limits {
    /// IMAP: 64 KiB lines, 16 MiB in-memory literals, bodies over 64 KiB streamed, up to 4 GiB.
    pub const fn imap() -> Self {
        Self {
            max_line: 64 * KIB,
            max_literal: 16 * MIB as u64,
            stream_threshold: 64 * KIB as u64,
            max_message: 4 * 1024 * MIB as u64,
            max_response: 64 * MIB,
            max_depth: 64,
            max_lines: 100_000,
        }
    }

    /// POP3: 8 KiB status lines, bodies up to 4 GiB, listings of up to 1,000,000 lines.
    ///
    /// Lines inside a message body are not bounded by `max_line`: they are streamed.
    pub const fn pop3() -> Self {
        Self {
            max_line: 8 * KIB,
            max_literal: 0,
            stream_threshold: 0,
            max_message: 4 * 1024 * MIB as u64,
            max_response: 64 * MIB,
            max_depth: 0,
            max_lines: 1_000_000,
        }
    }

    /// SMTP: 512-byte reply lines (RFC 5321 §4.5.3.1.5) and at most 1,000 lines a reply.
    pub const fn smtp() -> Self {
        Self {
            max_line: 512,
            max_literal: 0,
            stream_threshold: 0,
            max_message: 0,
            max_response: MIB,
            max_depth: 0,
            max_lines: 1_000,
        }
    }

    /// No limit at all. A hostile server can then make the client allocate without bound:
    /// use only on trusted input.
    pub const fn dangerous_unlimited() -> Self {
        Self {
            max_line: usize::MAX,
            max_literal: u64::MAX,
            stream_threshold: u64::MAX,
            max_message: u64::MAX,
            max_response: usize::MAX,
            max_depth: usize::MAX,
            max_lines: usize::MAX,
        }
    }
}
