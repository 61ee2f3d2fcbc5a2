//! The one decode contract: what a driver's read loop needs from the IMAP, POP3 and SMTP
//! decoders.
//!
//! A driver keeps one buffer per connection. It appends what the server sends, gives the
//! decoder every byte not yet consumed, and acts on the [`Decoded`] answer:
//!
//! ```text
//!  bytes received ─► decode(input) ─┬─ Event { consumed, event }  act on it, drop `consumed` bytes
//!                                   ├─ Incomplete { bound }       read more (fewer than `bound` needed)
//!                                   └─ Invalid(error)             close: the stream cannot be framed
//!  server closed ──► end_of_input(unread) ─► Ok(()) between items, or Err(Truncated) mid-item
//! ```
//!
//! One loop serves the three protocols: [`crate::imap::ResponseDecoder`],
//! [`crate::pop3::Decoder`] and [`crate::smtp::ReplyDecoder`] implement [`Decode`], each with its
//! own [`Decode::Event`]. What differs between them (the POP3 decoder must be told what the
//! next reply is, the IMAP decoder streams large bodies) stays in their own methods; what a
//! read loop does is here.
//!
//! # Bytes passed on are ranges of the input
//!
//! Message bodies and other bytes an event passes on (an IMAP body chunk, a POP3 body chunk,
//! listing line or SASL challenge) are given as a [`Range<usize>`](std::ops::Range) of the
//! input, always within the `consumed` bytes. A driver that splits the consumed bytes off its
//! buffer (`BytesMut::split_to(consumed).freeze()`) slices the chunk out of them with that
//! range and hands it to a sink: no copy, no allocation, and no pointer arithmetic to find
//! where a borrowed slice sat in the buffer. Parsed values (an IMAP response, a POP3 status
//! line, an SMTP reply) borrow from the input as before and are turned into owned values when
//! they must outlive it.
//!
//! # The bound of an incomplete item
//!
//! [`Decoded::Incomplete`] carries `bound`: the most bytes, counted from the start of the
//! input, that the item in progress can take before the decoder decides — an event, or an
//! error such as [`DecodeError::LineTooLong`] — as far as it knows now (an IMAP literal
//! announced further on moves it). It is always larger than the input given. A driver sizes its
//! buffer by it instead of guessing, and can refuse at once an item that its own memory budget
//! cannot hold, rather than read on until the decoder's limit says the line can never complete.
//!
//! # Why the trait is not object-safe
//!
//! [`Decode::Event`] is a generic associated type: an event borrows the input buffer (and the
//! IMAP decoder's own copy of a response it re-assembled around a streamed body), so its type
//! depends on the lifetime of one call. That makes the trait unusable as `dyn Decode`. The
//! alternatives cost more than they give: owned events allocate for every response (what
//! borrowing from the buffer avoids), and a type-erased event pushes a downcast into every
//! driver. The driver is generic instead (`D: Decode`,
//! compiled once per protocol from one source); a program that must choose the protocol at run
//! time, as `mailcat decode` does, wraps each decoder in its own object-safe trait that maps
//! events to what it needs.
//!
//! # The older entry points
//!
//! Before this contract each decoder had its own calling convention
//! (`Result<(usize, Event), DecodeError>` with [`DecodeError::Incomplete`], body chunks as
//! slices, three shapes of end-of-input). Those methods remain until every caller reads
//! through the trait, as thin wrappers over the same step as [`Decode::decode`] (the IMAP and
//! POP3 steps are compiled once for ranges and once for slices, so neither path converts
//! events); [`Decoded::into_result`] gives a trait answer the old shape.

use crate::DecodeError;

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod check;
#[cfg(test)]
mod tests;

/// What a decoder found in the bytes it was given: the answer of [`Decode::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an event must be acted on and its bytes consumed, or the stream desynchronises"]
pub enum Decoded<E> {
    /// The first `consumed` bytes of the input made `event`. Drop them from the buffer before
    /// the next call (they may be 0: an event that closes something already consumed).
    Event {
        /// How many bytes from the start of the input the event used.
        consumed: usize,
        /// What they were.
        event: E,
    },
    /// Nothing can be decided from the bytes so far: read more, then call again with the whole
    /// (longer) buffer. `bound` is larger than the input given: the most bytes the item in
    /// progress can take, as far as the decoder knows now (see the [module docs](self)).
    Incomplete {
        /// The most bytes, from the start of the input, the item in progress can take before
        /// the decoder decides.
        bound: usize,
    },
    /// The bytes break the protocol or a limit, at the offset the error names (see
    /// [`DecodeError::offset`]; never [`DecodeError::Incomplete`]). Final: the stream can no
    /// longer be framed, so the connection must be closed.
    Invalid(DecodeError),
}

impl<E> Decoded<E> {
    /// The same answer with the event mapped by `f`.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Decoded<F> {
        match self {
            Self::Event { consumed, event } => Decoded::Event {
                consumed,
                event: f(event),
            },
            Self::Incomplete { bound } => Decoded::Incomplete { bound },
            Self::Invalid(error) => Decoded::Invalid(error),
        }
    }

    /// The older shape, for callers not yet on this contract: `Ok((consumed, event))`, or
    /// `Err(DecodeError::Incomplete)` (the bound is dropped), or the final error.
    pub fn into_result(self) -> Result<(usize, E), DecodeError> {
        match self {
            Self::Event { consumed, event } => Ok((consumed, event)),
            Self::Incomplete { .. } => Err(DecodeError::Incomplete),
            Self::Invalid(error) => Err(error),
        }
    }

    /// `Incomplete` with `bound` for [`DecodeError::Incomplete`], `Invalid` for any other error.
    pub(crate) fn from_result(result: Result<(usize, E), DecodeError>, bound: usize) -> Self {
        match result {
            Ok((consumed, event)) => Self::Event { consumed, event },
            Err(DecodeError::Incomplete) => Self::Incomplete { bound },
            Err(error) => Self::Invalid(error),
        }
    }
}

/// A streaming decoder of server bytes: the contract a driver's read loop is written against.
///
/// Give [`Decode::decode`] every byte received and not yet consumed, always from the first one;
/// act on the [`Decoded`] answer; when the server closes the connection, ask
/// [`Decode::end_of_input`] whether it stopped between two items. See the [module docs](self)
/// for ranges, bounds, and why the trait is generic rather than object-safe.
///
/// ```
/// use mailcat_codec::smtp::ReplyDecoder;
/// use mailcat_codec::{Decode, Decoded, Limits};
///
/// // An EHLO reply, as the network delivers it: cut anywhere.
/// let reads: [&[u8]; 3] = [
///     b"250-mail.example.org\r\n250-PIPE",
///     b"LINING\r\n250 SIZE 35882577\r",
///     b"\n",
/// ];
/// let mut decoder = ReplyDecoder::new(Limits::smtp());
/// let mut buf = Vec::new();
/// let mut replies = Vec::new();
/// for read in reads {
///     buf.extend_from_slice(read);
///     loop {
///         match decoder.decode(&buf) {
///             Decoded::Event { consumed, event } => {
///                 replies.push((event.code.get(), event.lines.len()));
///                 buf.drain(..consumed);
///             }
///             Decoded::Incomplete { bound } => {
///                 assert!(buf.len() < bound);
///                 break;
///             }
///             Decoded::Invalid(error) => panic!("{error}"),
///         }
///     }
/// }
/// assert_eq!(replies, [(250, 3)]);
/// assert_eq!(decoder.end_of_input(&buf), Ok(()));
/// ```
pub trait Decode {
    /// What one step yields. It may borrow the input (and the decoder); bytes it passes on are
    /// ranges of the input.
    type Event<'a>
    where
        Self: 'a;

    /// Decodes the next event from the front of `input`, which holds every byte received and
    /// not yet consumed.
    ///
    /// After [`Decoded::Event`] the caller drops the `consumed` bytes before the next call;
    /// after [`Decoded::Incomplete`] it calls again with the same bytes and more. After
    /// [`Decoded::Invalid`] the decoder's state is unspecified: the connection is over.
    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<Self::Event<'a>>;

    /// Says whether the input ended cleanly, when the server has closed the connection and
    /// `unread` (possibly empty) is all that was not consumed: `Ok(())` between two items,
    /// otherwise the error — [`DecodeError::Truncated`] naming what was cut off, with an offset
    /// into `unread`.
    fn end_of_input(&self, unread: &[u8]) -> Result<(), DecodeError>;
}
