//! What a test emits through `tracing`, captured into a buffer it can search.
//!
//! A test binary runs its tests on many threads, and `tracing` caches each call site's
//! interest the first time any thread reaches it. While only one dispatcher has ever been
//! registered, tracing-core asks *the registering thread's* default dispatcher — so a call
//! site first reached by another test, on a thread without this subscriber, is cached as
//! "never" and this test's events from it vanish (seen in CI: the `S:` lines of the
//! transport trace were missing, the `C:` lines present). With two live dispatchers it
//! asks every registered one under a lock, so [`TraceCapture::start`] registers a second,
//! silent one first.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::dispatcher::DefaultGuard;
use tracing::Dispatch;

/// Captures the events of the current thread while it lives.
#[must_use = "the capture stops when it is dropped"]
pub struct TraceCapture {
    buffer: Buffer,
    // Declared before `_silent`: this test's dispatcher is unset before the second one goes.
    _guard: DefaultGuard,
    _silent: Dispatch,
}

impl TraceCapture {
    /// Starts capturing, on this thread, the events `filter` (an `EnvFilter` directive such as
    /// `"mailcat::trace=debug"`) lets through, without ANSI colours.
    pub fn start(filter: &str) -> Self {
        let silent = Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            buffer,
            _guard: guard,
            _silent: silent,
        }
    }

    /// Everything captured so far, as text.
    pub fn text(&self) -> String {
        let bytes = self.buffer.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::fmt::Debug for TraceCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceCapture")
            .field("bytes", &self.buffer.0.lock().map_or(0, |b| b.len()))
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::TraceCapture;

    fn shared_call_site(n: u32) {
        tracing::info!(target: "capture_test", "event {n}");
    }

    #[test]
    fn a_call_site_first_reached_on_another_thread_still_reaches_the_capture() {
        let capture = TraceCapture::start("capture_test=info");
        // Another test's thread, with no subscriber of its own, reaches the call site first.
        std::thread::spawn(|| shared_call_site(1))
            .join()
            .expect("the other thread");
        shared_call_site(2);
        let text = capture.text();
        assert!(text.contains("event 2"), "the event was lost: {text:?}");
        assert!(
            !text.contains("event 1"),
            "another thread's event: {text:?}"
        );
    }
}
