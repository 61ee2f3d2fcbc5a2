//! Where IMAP `[ALERT]` texts go as they arrive. RFC 3501 §7.1: the text of an ALERT "MUST be
//! presented to the user in a fashion that calls the user's attention to the message"; a
//! server uses it for what the user has to act on (a quota, a locked account, why IDLE is off).

use std::fmt;
use std::sync::Arc;

/// A function that shows an alert: called with the server's host name and the text, its
/// control characters already escaped. The CLI prints it on stderr; an app shows a dialog.
#[derive(Clone)]
pub struct AlertSink(Arc<ShowAlert>);

/// The function behind an [`AlertSink`]: `(host, text)`.
type ShowAlert = dyn Fn(&str, &str) + Send + Sync;

impl AlertSink {
    /// A sink that calls `show(host, text)` for each alert.
    pub fn new(show: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(show))
    }

    /// Shows one alert.
    pub fn alert(&self, host: &str, text: &str) {
        (self.0)(host, text);
    }
}

impl fmt::Debug for AlertSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AlertSink")
    }
}
