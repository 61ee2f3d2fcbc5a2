//! Sans-I/O parsers and encoders for POP3, IMAP and SMTP.
//!
//! Bytes in, values out: nothing here does I/O or knows about tokio. One decode contract serves
//! the three protocols, the [`Decode`] trait: a decoder takes the bytes received so far and
//! answers with an event and the number of bytes it used, or "incomplete" (read more, call
//! again with the whole buffer; with the most bytes the item can take), or a final error naming
//! the offset and what was expected. Body bytes come out as ranges of the input, so a driver
//! passes them to a sink without copying.
//!
//! - [`imap`]: RFC 3501 / 9051 responses (and the extensions a client session uses), commands.
//! - [`pop3`]: RFC 1939 / 2449 / 2595 / 5034 responses, multi-line bodies, commands.
//! - [`smtp`]: RFC 5321 / 3463 / 4954 / 2920 replies, EHLO extensions, commands.
//! - [`core`]: line framing, dot-stuffing, validated text, SASL payloads.
//!
//! Large message bodies never have to fit in memory: an IMAP FETCH body literal, a POP3 RETR
//! body and an SMTP DATA body pass through in chunks.
#![warn(missing_docs)]

pub mod core;
mod error;
pub mod imap;
mod limits;
pub mod pop3;
pub mod smtp;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;

pub use crate::core::decode::{Decode, Decoded};
pub use error::{DecodeError, EncodeError};
pub use limits::Limits;

/// `assert!(matches!(value, pattern))` that shows the value it got when it fails:
/// `assert_matches!(reply, Ok(n) if n > 2)`, with an optional message after the pattern.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)] // for tests only: the codec's, and the workspace's through mailcat_tests
#[macro_export]
macro_rules! assert_matches {
    ($value:expr, $($pattern:pat_param)|+ $(if $guard:expr)? $(,)?) => {
        match $value {
            $($pattern)|+ $(if $guard)? => {}
            ref other => panic!(
                "assertion failed: `{}` does not match `{}`\n  got: {:?}",
                stringify!($value),
                stringify!($($pattern)|+ $(if $guard)?),
                other
            ),
        }
    };
    ($value:expr, $($pattern:pat_param)|+ $(if $guard:expr)?, $($message:tt)+) => {
        match $value {
            $($pattern)|+ $(if $guard)? => {}
            ref other => panic!(
                "assertion failed: `{}` does not match `{}`: {}\n  got: {:?}",
                stringify!($value),
                stringify!($($pattern)|+ $(if $guard)?),
                format_args!($($message)+),
                other
            ),
        }
    };
}
