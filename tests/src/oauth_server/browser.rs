//! A stand-in for the user's browser in the authorization-code flow. mailcat opens the
//! authorization URL with `$BROWSER URL`; with `BROWSER` set to [`FakeBrowser::path`], the URL
//! is fetched with curl, trusting the mock server's CA, and the server's redirect is followed
//! to the client's loopback listener, as a browser does once the user has consented.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// An executable `sh` script in a temporary directory of its own (removed on drop), and the
/// log of what it did.
///
/// Each run appends to the log one line `open URL` (the URL it was given), then curl's result:
/// `done STATUS FINAL_URL` (the loopback listener's status and URL; `000` when no answer came),
/// preceded by curl's message if it failed. It gives up after 20 s, never uses a proxy, and
/// follows at most 3 redirects (https → the client's `http://127.0.0.1:PORT/…` included).
/// curl's exit status is the script's.
#[derive(Debug)]
pub struct FakeBrowser {
    dir: PathBuf,
    script: PathBuf,
    log: PathBuf,
}

impl FakeBrowser {
    /// Writes the script; it trusts the CA certificate in `ca_file`.
    pub fn new(ca_file: &Path) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mailcat-fake-browser-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the fake browser's directory");
        let script = dir.join("browser");
        let log = dir.join("visits.log");
        let quote = |path: &Path| {
            let text = path.to_str().expect("a UTF-8 temporary path");
            assert!(!text.contains('\''), "a path without quotes: {text}");
            format!("'{text}'")
        };
        let text = format!(
            "#!/bin/sh\n\
             # The browser of mailcat's OAuth2 tests (tests/src/oauth_server/browser.rs).\n\
             printf 'open %s\\n' \"$1\" >> {log}\n\
             exec curl -sS -L --max-redirs 3 --noproxy '*' --max-time 20 --cacert {ca} \
             -o /dev/null -w 'done %{{http_code}} %{{url_effective}}\\n' \"$1\" >> {log} 2>&1\n",
            log = quote(&log),
            ca = quote(ca_file),
        );
        // Written under another name and renamed, so nobody can run a half-written script.
        let partial = dir.join("browser.partial");
        std::fs::write(&partial, text).expect("write the fake browser");
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
            .expect("make the fake browser executable");
        std::fs::rename(&partial, &script).expect("install the fake browser");
        Self { dir, script, log }
    }

    /// The script, for `BROWSER`.
    pub fn path(&self) -> &Path {
        &self.script
    }

    /// The log's lines so far (see [`FakeBrowser`]).
    pub fn visits(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for FakeBrowser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
