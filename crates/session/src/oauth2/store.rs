//! Where the tokens of a sign-in are kept: [`TokenStore`], which an app implements over its
//! own secret storage, and [`FileTokenStore`], a private file per account.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{OAuth2Error, TokenSet};

/// Keeps one account's tokens. Calls are short and synchronous (a file, a keyring).
pub trait TokenStore: fmt::Debug + Send + Sync {
    /// The stored tokens, `None` if there are none.
    fn load(&self) -> Result<Option<TokenSet>, OAuth2Error>;
    /// Replaces the stored tokens, whole or not at all.
    fn save(&self, tokens: &TokenSet) -> Result<(), OAuth2Error>;
    /// Removes the stored tokens; `true` if there were any.
    fn delete(&self) -> Result<bool, OAuth2Error>;
    /// Where the tokens are, for messages (`~/.local/state/mailcat/oauth2/home.json`).
    fn location(&self) -> String;
}

/// Tokens in a JSON file of mode 0600, replaced atomically (write, fsync, rename), in a
/// directory of mode 0700. A file others can read is refused, not used: the refresh token in
/// it is as good as the password.
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    path: PathBuf,
}

impl FileTokenStore {
    /// A store in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `$XDG_STATE_HOME/mailcat/oauth2/<account>.json`, else under `~/.local/state`; `None`
    /// when neither variable is set. Characters of `account` that a file name cannot hold
    /// safely are written as `%XX`.
    pub fn default_path(account: &str) -> Option<PathBuf> {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| PathBuf::from(home).join(".local").join("state"))
            })?;
        Some(
            base.join("mailcat")
                .join("oauth2")
                .join(format!("{}.json", file_name(account))),
        )
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, reason: impl Into<String>) -> OAuth2Error {
        OAuth2Error::Store {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }
}

/// An account name as a file name: `[A-Za-z0-9_-]` and inner dots kept, the rest `%XX`.
fn file_name(account: &str) -> String {
    let mut out = String::new();
    for (i, b) in account.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

impl TokenStore for FileTokenStore {
    fn load(&self) -> Result<Option<TokenSet>, OAuth2Error> {
        let file = match fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.fail(format!("cannot be read: {e}"))),
        };
        let meta = file
            .metadata()
            .map_err(|e| self.fail(format!("cannot be read: {e}")))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(self.fail(format!(
                "other users can read it (mode {mode:04o}); it holds your sign-in: make it private with `chmod 600 {}`, or delete it and sign in again",
                self.path.display()
            )));
        }
        if meta.uid() != rustix::process::geteuid().as_raw() {
            return Err(
                self.fail("belongs to another user; delete it and sign in again".to_owned())
            );
        }
        if meta.len() > 1024 * 1024 {
            return Err(self.fail("is larger than 1 MiB: not a token file"));
        }
        let text = fs::read(&self.path).map_err(|e| self.fail(format!("cannot be read: {e}")))?;
        TokenSet::from_json(&text)
            .map(Some)
            .map_err(|reason| self.fail(format!("{reason}; delete it and sign in again")))
    }

    fn save(&self, tokens: &TokenSet) -> Result<(), OAuth2Error> {
        let dir = self
            .path
            .parent()
            .ok_or_else(|| self.fail("has no directory"))?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| self.fail(format!("cannot create {}: {e}", dir.display())))?;
        let name = self
            .path
            .file_name()
            .ok_or_else(|| self.fail("has no file name"))?
            .to_string_lossy();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> io::Result<()> {
            let _ = fs::remove_file(&temp);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(tokens.to_json().as_bytes())?;
            file.sync_all()?;
            fs::rename(&temp, &self.path)?;
            fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&temp);
            self.fail(format!("cannot be written: {e}"))
        })
    }

    fn delete(&self) -> Result<bool, OAuth2Error> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.fail(format!("cannot be deleted: {e}"))),
        }
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn tokens() -> TokenSet {
        TokenSet {
            provider: "google".into(),
            client_id: "c".into(),
            scopes: vec!["https://mail.google.com/".into()],
            access_token: Secret::new("at"),
            expires_at: Some(5),
            obtained_at: None,
            refresh_token: Some(Secret::new("rt")),
        }
    }

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mailcat-tokens-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn saved_tokens_are_private_and_read_back() {
        let dir = dir("save");
        let store = FileTokenStore::new(dir.join("oauth2/home.json"));
        assert!(store.load().unwrap().is_none());
        store.save(&tokens()).unwrap();
        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(dir.join("oauth2"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(store.load().unwrap(), Some(tokens()));
        // Replaced whole; no temporary file left behind.
        store.save(&tokens()).unwrap();
        assert_eq!(fs::read_dir(dir.join("oauth2")).unwrap().count(), 1);
        assert!(store.delete().unwrap());
        assert!(!store.delete().unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_others_can_read_is_refused_with_the_fix() {
        let dir = dir("mode");
        let store = FileTokenStore::new(dir.join("t.json"));
        store.save(&tokens()).unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(error.contains("mode 0644"), "{error}");
        assert!(error.contains("chmod 600"), "{error}");
        assert!(!error.contains("rt"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_file_is_refused_without_quoting_it() {
        let dir = dir("damaged");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.json");
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap()
            .write_all(b"{\"access_token\": \"secret-xyz\"")
            .unwrap();
        let error = FileTokenStore::new(&path).load().unwrap_err().to_string();
        assert!(error.contains("sign in again"), "{error}");
        assert!(!error.contains("secret-xyz"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn account_names_become_safe_file_names() {
        assert_eq!(file_name("home"), "home");
        assert_eq!(file_name("a.b-c_d"), "a.b-c_d");
        assert_eq!(file_name("../x"), "%2E.%2Fx");
        assert_eq!(file_name(".hidden"), "%2Ehidden");
        assert_eq!(file_name(""), "%00");
        assert_eq!(file_name("é"), "%C3%A9");
    }
}
