//! Autoconfiguration: from an e-mail address to the servers that serve it (DESIGN.md).
//!
//! The stages, in order of trust: mailcat's provider table, the domain's autoconfig XML
//! (Thunderbird's format, over HTTPS), RFC 6186/8314 SRV records, a provider recognised by the
//! domain's MX hosts, and host names guessed and confirmed by probing. Each stage is
//! time-bounded, and so is the whole run.

pub mod dns;
pub mod https;
pub mod xml;
