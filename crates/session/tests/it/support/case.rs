#![allow(dead_code)]
//! The case a table-driven test is running: while a [`Case`] is alive, a failure (an assertion
//! in the test or the scripted server's expectation) is reported with the case's name and what
//! the client had sent so far, so that a row of a table that fails says which row it is.
//!
//! The scripted server prints its full transcript when one of its expectations fails, and when
//! the test fails while it holds the server; what the guard adds is the case's name (and the
//! client's lines, for a server the test no longer holds).

use mailcat_tests::script::Live;

/// Names a case until dropped; prints the name and the client's lines if the test panics
/// meanwhile.
pub(crate) struct Case {
    name: String,
    live: Option<Live>,
}

impl Case {
    /// A case with no server to show.
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            live: None,
        }
    }

    /// A case whose server records what the client sends in `live`.
    pub(crate) fn with_live(name: impl Into<String>, live: Live) -> Self {
        Self {
            name: name.into(),
            live: Some(live),
        }
    }

    /// The case's name, for assertion messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!("--- the failing case: {} ---", self.name);
        if let Some(live) = &self.live {
            let lines = live.lock().map(|l| l.clone()).unwrap_or_default();
            eprintln!("--- what the client sent so far (C:) ---");
            for line in lines {
                eprintln!("C: {line}");
            }
            eprintln!("---");
        }
    }
}
