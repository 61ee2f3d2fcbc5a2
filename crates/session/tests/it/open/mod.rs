//! Opening a connection against scripted servers over real loopback sockets: resolve, connect,
//! implicit TLS or STARTTLS, greeting, capabilities, as `mailcat_session::open` runs them for
//! every session and for the account check. What the transport does (timeouts, TLS errors,
//! the upgrade's refusal of buffered bytes) is seen through it, as users see it.
//!
//! A module per subject.

#![allow(dead_code, clippy::unwrap_used)]

mod support;

mod greeting_capabilities;
mod lock_step;
mod plaintext_mixups;
// Delayed ACKs and TCP_QUICKACK as Linux has them.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod prompt_acks;
mod starttls;
mod timeouts;
mod tls_errors;
