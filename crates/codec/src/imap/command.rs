//! IMAP command encoders.
