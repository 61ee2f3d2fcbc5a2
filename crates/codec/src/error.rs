//! The errors of the codec: one for decoding server bytes, one for encoding client commands.

/// Why server bytes could not be decoded.
///
/// [`DecodeError::Incomplete`] is not a failure: it asks the caller to read more bytes and call
/// the decoder again with the whole buffer. Every other variant is final for the stream: the
/// caller should close the connection, since it can no longer know where the next response starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes are needed before anything can be decided.
    #[error("incomplete: more bytes are needed")]
    Incomplete,
    /// The bytes at `offset` do not follow the protocol's syntax.
    #[error("invalid server response at byte {offset}: expected {expected}")]
    Invalid {
        /// Offset from the start of the buffer given to the decoder.
        offset: usize,
        /// What the grammar required at that point.
        expected: &'static str,
    },
    /// A line did not end within the configured maximum length.
    #[error("line starting at byte {offset} is longer than the limit of {limit} bytes")]
    LineTooLong {
        /// Offset of the start of the line.
        offset: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A literal (or a message body) announced more bytes than allowed; nothing was allocated.
    #[error("literal of {len} bytes at byte {offset} exceeds the limit of {limit} bytes")]
    LiteralTooLarge {
        /// Offset of the literal's `{`.
        offset: usize,
        /// The length the server announced.
        len: u64,
        /// The limit in force.
        limit: u64,
    },
    /// Parentheses (or other structures) nested deeper than allowed.
    #[error("nesting at byte {offset} is deeper than the limit of {limit} levels")]
    TooDeep {
        /// Offset where the limit was crossed.
        offset: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A response had more lines than allowed (multi-line replies, listings).
    #[error("response starting at byte {offset} has more than {limit} lines")]
    TooManyLines {
        /// Offset of the start of the response.
        offset: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A response (excluding streamed bodies) grew beyond the configured size.
    #[error("response starting at byte {offset} is larger than the limit of {limit} bytes")]
    ResponseTooLarge {
        /// Offset of the start of the response.
        offset: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The stream ended in the middle of something.
    #[error("the stream ended inside {inside} (after byte {offset})")]
    Truncated {
        /// Offset where the unfinished element started.
        offset: usize,
        /// What was unfinished: "a literal", "a multi-line response", "a line", ...
        inside: &'static str,
    },
}

impl DecodeError {
    /// True for [`DecodeError::Incomplete`]: read more and try again.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Self::Incomplete)
    }

    /// Where in the input the problem is (the start of the line, literal or response it
    /// concerns), or `None` for [`DecodeError::Incomplete`], which has no place.
    pub fn offset(&self) -> Option<usize> {
        use DecodeError::*;
        match *self {
            Incomplete => None,
            Invalid { offset, .. }
            | LineTooLong { offset, .. }
            | LiteralTooLarge { offset, .. }
            | TooDeep { offset, .. }
            | TooManyLines { offset, .. }
            | ResponseTooLarge { offset, .. }
            | Truncated { offset, .. } => Some(offset),
        }
    }

    /// The same error with every offset moved by `delta` (for parsers that work on a sub-slice).
    #[must_use]
    pub fn shifted(self, delta: usize) -> Self {
        self.map_offset(|offset| offset + delta)
    }

    /// The same error with its offset (whichever variant holds it) mapped by `f`.
    pub(crate) fn map_offset(self, f: impl FnOnce(usize) -> usize) -> Self {
        use DecodeError::*;
        match self {
            Incomplete => Incomplete,
            Invalid { offset, expected } => Invalid {
                offset: f(offset),
                expected,
            },
            LineTooLong { offset, limit } => LineTooLong {
                offset: f(offset),
                limit,
            },
            LiteralTooLarge { offset, len, limit } => LiteralTooLarge {
                offset: f(offset),
                len,
                limit,
            },
            TooDeep { offset, limit } => TooDeep {
                offset: f(offset),
                limit,
            },
            TooManyLines { offset, limit } => TooManyLines {
                offset: f(offset),
                limit,
            },
            ResponseTooLarge { offset, limit } => ResponseTooLarge {
                offset: f(offset),
                limit,
            },
            Truncated { offset, inside } => Truncated {
                offset: f(offset),
                inside,
            },
        }
    }
}

/// Why a client command could not be encoded. Nothing was produced: no partial command can leak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A value contains a byte that would end the command line early or corrupt it.
    #[error("{field} contains a forbidden {} at position {position}; remove it", byte_name(*byte))]
    ForbiddenByte {
        /// Which value: "mailbox name", "password", "login", ...
        field: &'static str,
        /// The byte found.
        byte: u8,
        /// Its position in the value.
        position: usize,
    },
    /// A value is longer than the protocol allows.
    #[error("{field} is {len} bytes long; the limit is {limit}")]
    TooLong {
        /// Which value.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A value that must not be empty is.
    #[error("{field} is empty")]
    Empty {
        /// Which value.
        field: &'static str,
    },
    /// A value does not have the syntax the protocol requires.
    #[error("{field} is not valid: {reason}")]
    Invalid {
        /// Which value.
        field: &'static str,
        /// What is wrong and, where possible, how to fix it.
        reason: &'static str,
    },
}

fn byte_name(byte: u8) -> String {
    match byte {
        b'\r' => "carriage return (CR)".to_owned(),
        b'\n' => "line feed (LF)".to_owned(),
        0 => "NUL byte".to_owned(),
        b => format!("byte 0x{b:02x}"),
    }
}
