//! SMTP addresses.
