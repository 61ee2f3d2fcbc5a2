//! `~` and `~user` at the start of a path, expanded as a shell, msmtp and getmail do, wherever
//! mailcat takes a path (`--to maildir:~/Mail`, `--config`, `--ca-file`, `ca_file` in the
//! configuration file): the shell does not expand `~` after `maildir:` or `--flag=`, nor in a
//! file, and `./~/Mail` is never what anybody meant.
//!
//! - `~` and `~/…`: `$HOME`; when it is unset or empty, the home directory of the user running
//!   mailcat, from the user database.
//! - `~name` and `~name/…`: the home directory of `name` in the user database, read with
//!   `getent passwd NAME` (what getpwnam(3) returns, so LDAP or sssd users count too, without
//!   calling into libc, which would need `unsafe`); where `getent` is missing, `/etc/passwd`.
//!   A user that does not exist is an error, not a directory named `~name`.
//! - A `~` anywhere else (`a/~b`) is an ordinary character.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `getent` may take (the user database may be on the network).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a `~` could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TildeError {
    /// The `~` or `~name` as written.
    pub prefix: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for TildeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot expand {}: {}", self.prefix, self.reason)
    }
}

impl std::error::Error for TildeError {}

/// `path` with a leading `~` or `~name` replaced by that home directory.
pub(crate) fn expand(path: &Path) -> Result<PathBuf, TildeError> {
    let bytes = path.as_os_str().as_bytes();
    let Some(rest) = bytes.strip_prefix(b"~") else {
        return Ok(path.to_owned());
    };
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let (name, tail) = rest.split_at(end);
    let home = if name.is_empty() {
        own_home()?
    } else {
        user_home(name)?
    };
    // `tail` is empty or starts with '/': joined to the home as written.
    let mut out = home.into_os_string().into_vec();
    while out.ends_with(b"/") && !tail.is_empty() {
        out.pop();
    }
    out.extend_from_slice(tail);
    Ok(PathBuf::from(OsString::from_vec(out)))
}

/// For clap: a path argument with `~` expanded.
pub(crate) fn path_arg(value: &str) -> Result<PathBuf, TildeError> {
    expand(Path::new(value))
}

/// `$HOME`, else the user database's home of the user running mailcat.
fn own_home() -> Result<PathBuf, TildeError> {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let uid = rustix::process::getuid().as_raw().to_string();
    lookup(uid.as_bytes())?.ok_or_else(|| TildeError {
        prefix: "~".into(),
        reason: format!(
            "HOME is not set and the user database has no user {uid}; set HOME or write the whole path"
        ),
    })
}

/// The home directory of the user `name`.
fn user_home(name: &[u8]) -> Result<PathBuf, TildeError> {
    let prefix = format!("~{}", String::from_utf8_lossy(name));
    // Portable user names (POSIX): letters, digits, '.', '_', '-', not starting with '-'. Also
    // what keeps the name from being read as an option of getent.
    let portable = name.first() != Some(&b'-')
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !portable {
        return Err(TildeError {
            prefix,
            reason: "that is not a user name; write the whole path".into(),
        });
    }
    lookup(name)?.ok_or_else(|| TildeError {
        reason: format!(
            "there is no user {:?} on this system; check the name or write the whole path",
            String::from_utf8_lossy(name)
        ),
        prefix,
    })
}

/// The home directory of a user name or numeric id in the user database, `None` if there is
/// no such user.
fn lookup(key: &[u8]) -> Result<Option<PathBuf>, TildeError> {
    let error = |reason: String| TildeError {
        prefix: format!("~{}", String::from_utf8_lossy(key)),
        reason,
    };
    match getent(key) {
        Ok(entry) => Ok(entry.as_deref().and_then(home_of_entry)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // No getent on this system: the local file is all there is to ask.
            let passwd = std::fs::read("/etc/passwd")
                .map_err(|e| error(format!("cannot read /etc/passwd: {e}")))?;
            Ok(passwd
                .split(|&b| b == b'\n')
                .find(|line| entry_matches(line, key))
                .and_then(home_of_entry))
        }
        Err(e) => Err(error(format!("cannot look the user up with getent: {e}"))),
    }
}

/// Runs `getent passwd KEY`; its line, or `None` when the database has no such entry (exit 2).
fn getent(key: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    let mut child = Command::new("getent")
        .arg("passwd")
        .arg(OsStr::from_bytes(key))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + LOOKUP_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", LOOKUP_TIMEOUT.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut output = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_end(&mut output)?;
    }
    match status.code() {
        Some(0) => Ok(output
            .split(|&b| b == b'\n')
            .find(|line| entry_matches(line, key))
            .map(<[u8]>::to_vec)),
        // "One or more supplied key could not be found in the database."
        Some(2) => Ok(None),
        _ => Err(std::io::Error::other(format!("getent failed ({status})"))),
    }
}

/// True when a passwd line is the entry of `key`, a name or a numeric user id.
fn entry_matches(line: &[u8], key: &[u8]) -> bool {
    let mut fields = line.split(|&b| b == b':');
    let name = fields.next();
    let uid = fields.nth(1);
    name == Some(key) || (key.iter().all(u8::is_ascii_digit) && uid == Some(key))
}

/// The home directory (the sixth field) of a passwd line, when it is an absolute path.
fn home_of_entry(line: &[u8]) -> Option<PathBuf> {
    let home = line.split(|&b| b == b':').nth(5)?;
    home.starts_with(b"/")
        .then(|| PathBuf::from(OsStr::from_bytes(home)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_home() -> PathBuf {
        let passwd = std::fs::read("/etc/passwd").expect("every Unix has /etc/passwd");
        passwd
            .split(|&b| b == b'\n')
            .find(|line| line.starts_with(b"root:"))
            .and_then(home_of_entry)
            .expect("root has a home")
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set for tests"));
        assert_eq!(expand(Path::new("~")).unwrap(), home);
        assert_eq!(
            expand(Path::new("~/Mail/inbox")).unwrap(),
            home.join("Mail/inbox")
        );
    }

    #[test]
    fn tilde_user_is_that_users_home_directory() {
        assert_eq!(expand(Path::new("~root/x")).unwrap(), root_home().join("x"));
        assert_eq!(expand(Path::new("~root")).unwrap(), root_home());
    }

    #[test]
    fn an_unknown_user_or_a_name_that_is_no_user_name_is_an_error() {
        let error = expand(Path::new("~no-such-user-mailcat/x")).unwrap_err();
        assert_eq!(error.prefix, "~no-such-user-mailcat");
        assert!(error.to_string().contains("there is no user"), "{error}");
        let error = expand(Path::new("~-s/x")).unwrap_err();
        assert!(error.to_string().contains("not a user name"), "{error}");
        assert!(expand(Path::new("~a b/x")).is_err());
    }

    #[test]
    fn other_paths_are_left_alone() {
        for path in ["/etc/ssl/ca.pem", "Mail/~inbox", "./~", "", "a~"] {
            assert_eq!(expand(Path::new(path)).unwrap(), Path::new(path));
        }
    }

    #[test]
    fn passwd_entries_match_by_name_or_id() {
        let line = b"alice:x:1000:1000:Alice:/home/alice:/bin/sh";
        assert!(entry_matches(line, b"alice"));
        assert!(entry_matches(line, b"1000"));
        assert!(!entry_matches(line, b"alic"));
        assert!(!entry_matches(line, b"x"));
        assert_eq!(home_of_entry(line), Some(PathBuf::from("/home/alice")));
        assert_eq!(home_of_entry(b"bob:x:1:1::relative:/bin/sh"), None);
    }
}
