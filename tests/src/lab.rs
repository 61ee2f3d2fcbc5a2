//! The mail-server lab as the tests see it: the `MAILCAT_LAB_*` variables that
//! `tests/lab/lab.sh env` prints. Tests that need the lab call [`Lab::from_env`], which fails
//! the test loudly, with the command that fixes it, when the lab is not up: they never skip.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// The endpoints, users and CA of a running lab.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The address every service listens on (127.0.0.1).
    pub host: String,
    /// The "strict" address (127.0.0.2): Dovecot treats it as remote, so no login before TLS.
    pub strict_host: String,
    /// The name the server certificate is issued for (also valid: both addresses).
    pub tls_name: String,
    /// The test CA to trust.
    pub ca_file: PathBuf,
    /// IMAP with implicit TLS.
    pub imaps_port: u16,
    /// IMAP with STARTTLS.
    pub imap_port: u16,
    /// POP3 with implicit TLS.
    pub pop3s_port: u16,
    /// POP3 with STLS.
    pub pop3_port: u16,
    /// SMTP submission with STARTTLS.
    pub submission_port: u16,
    /// SMTP submissions with implicit TLS.
    pub submissions_port: u16,
    /// A user (the same login and password for IMAP, POP3 and SMTP).
    pub user: String,
    /// Its password.
    pub password: String,
    /// A user whose password has quotes, a backslash and spaces.
    pub tricky_user: String,
    /// That password: `p@ss "w0rd" \ end`.
    pub tricky_password: String,
}

/// The variable `name`; panics with the command that starts the lab when it is not set.
pub(crate) fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the mail-server lab. Start it with \
             `tests/lab/lab.sh install && tests/lab/lab.sh up && eval \"$(tests/lab/lab.sh env)\"`, \
             or run the whole suite with scripts/test-all.sh"
        )
    })
}

fn port(name: &str) -> u16 {
    let value = var(name);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{name}={value:?} is not a port number"))
}

impl Lab {
    /// Reads the lab from the environment; panics with instructions when it is not there.
    pub fn from_env() -> Self {
        let lab = Self {
            host: var("MAILCAT_LAB_HOST"),
            strict_host: var("MAILCAT_LAB_STRICT_HOST"),
            tls_name: var("MAILCAT_LAB_TLS_NAME"),
            ca_file: PathBuf::from(var("MAILCAT_LAB_CA_FILE")),
            imaps_port: port("MAILCAT_LAB_IMAPS_PORT"),
            imap_port: port("MAILCAT_LAB_IMAP_PORT"),
            pop3s_port: port("MAILCAT_LAB_POP3S_PORT"),
            pop3_port: port("MAILCAT_LAB_POP3_PORT"),
            submission_port: port("MAILCAT_LAB_SUBMISSION_PORT"),
            submissions_port: port("MAILCAT_LAB_SUBMISSIONS_PORT"),
            user: var("MAILCAT_LAB_USER"),
            password: var("MAILCAT_LAB_PASSWORD"),
            tricky_user: var("MAILCAT_LAB_TRICKY_USER"),
            tricky_password: var("MAILCAT_LAB_TRICKY_PASSWORD"),
        };
        assert!(
            lab.ca_file.is_file(),
            "MAILCAT_LAB_CA_FILE={} does not exist: is the lab up? (tests/lab/lab.sh up)",
            lab.ca_file.display()
        );
        lab
    }

    /// Every endpoint as a URL on `host`, with what it is: (url, protocol name, implicit TLS?).
    pub fn urls(&self, host: &str) -> Vec<(String, &'static str, bool)> {
        vec![
            (format!("imaps://{host}:{}", self.imaps_port), "IMAP", true),
            (format!("imap://{host}:{}", self.imap_port), "IMAP", false),
            (format!("pop3s://{host}:{}", self.pop3s_port), "POP3", true),
            (format!("pop3://{host}:{}", self.pop3_port), "POP3", false),
            (
                format!("smtps://{host}:{}", self.submissions_port),
                "SMTP",
                true,
            ),
            (
                format!("smtp://{host}:{}", self.submission_port),
                "SMTP",
                false,
            ),
        ]
    }
}

impl Lab {
    /// Seeds `user`'s mailbox with `count` messages of `size` bytes through `tests/lab/lab.sh
    /// seed` (`reset` empties it first; `lmtp` delivers as Postfix would instead of writing the
    /// Maildir directly, so a session that is IDLE sees it arrive).
    pub fn seed(
        &self,
        user: &str,
        count: u32,
        size: u32,
        reset: bool,
        lmtp: bool,
        start_index: u32,
    ) {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/lab.sh");
        let mut command = std::process::Command::new(script);
        command.args([
            "seed",
            "--user",
            user,
            "--count",
            &count.to_string(),
            "--size",
            &size.to_string(),
        ]);
        command.args(["--start-index", &start_index.to_string()]);
        if reset {
            command.arg("--reset");
        }
        if lmtp {
            command.args(["--via", "lmtp"]);
        }
        let output = command.output().expect("tests/lab/lab.sh runs");
        assert!(
            output.status.success(),
            "lab.sh seed failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Holds some lab users' mailboxes for one test: see [`lock_mailboxes`].
#[derive(Debug)]
pub struct MailboxLock {
    _guards: Vec<tokio::sync::OwnedMutexGuard<()>>,
}

/// Waits until no other test of this process holds any of `users`' mailboxes, then holds them
/// until the lock is dropped. The tests of a crate are one process (one test binary) and run in
/// parallel: a test that seeds, empties or fetches a lab user's mailbox takes its lock first, so
/// that a test of another module never changes it meanwhile. (Tests in other processes that use
/// the same lab users are not held back: those must tolerate each other, or run apart.)
pub async fn lock_mailboxes(users: &[&str]) -> MailboxLock {
    static LOCKS: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>> =
        Mutex::new(BTreeMap::new());
    let mut users = users.to_vec();
    // One order for everyone: two tests that each want two mailboxes never wait on each other.
    users.sort_unstable();
    users.dedup();
    let locks: Vec<_> = {
        let mut map = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
        users
            .iter()
            .map(|user| Arc::clone(map.entry((*user).to_owned()).or_default()))
            .collect()
    };
    let mut guards = Vec::with_capacity(locks.len());
    for lock in locks {
        guards.push(lock.lock_owned().await);
    }
    MailboxLock { _guards: guards }
}
