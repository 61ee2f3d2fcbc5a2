//! Exit codes (sysexits.h), the same meanings as msmtp's.

/// Success.
pub(crate) const OK: u8 = 0;
/// The command was used incorrectly (bad flag, missing argument).
pub(crate) const USAGE: u8 = 64;
/// The input data was malformed (a server stream that does not parse).
pub(crate) const DATAERR: u8 = 65;
/// Some recipients were refused (`send --allow-partial`: the others got the message).
pub(crate) const NOUSER: u8 = 67;
/// An I/O error on a local file or stream.
pub(crate) const IOERR: u8 = 74;
/// A service is unavailable: DNS, connection, TLS or protocol failure.
pub(crate) const UNAVAILABLE: u8 = 69;
/// A temporary failure: trying again later may work (timeouts, 4xx replies).
pub(crate) const TEMPFAIL: u8 = 75;
/// The server refused the credentials.
pub(crate) const NOPERM: u8 = 77;
/// Something is wrong in the configuration (a CA file that cannot be used ...).
pub(crate) const CONFIG: u8 = 78;
/// Stopped by SIGINT, Ctrl-C (128 + 2, as a shell reports a program SIGINT ended).
pub(crate) const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM (128 + 15, as a shell reports a program SIGTERM ended).
pub(crate) const TERMINATED: u8 = 143;

/// The name of an exit code in `--json` error objects (`"kind"`): what a script branches on.
pub(crate) fn kind(code: u8) -> &'static str {
    match code {
        OK => "ok",
        USAGE => "usage",
        DATAERR => "data",
        NOUSER => "recipients",
        IOERR => "io",
        UNAVAILABLE => "unavailable",
        TEMPFAIL => "temporary",
        NOPERM => "auth",
        CONFIG => "config",
        INTERRUPTED => "interrupted",
        TERMINATED => "terminated",
        _ => "failure",
    }
}
