//! The crash tests' fault points (feature `fault-injection` only).
//!
//! With the feature, `MAILCAT_FAULT=POINT` or `POINT@N` (the N-th time the point is reached;
//! default the first) aborts the process there, as abruptly as SIGKILL; `stall_POINT[@N]` waits
//! there for the sync's cancellation instead (saying so on stderr); `pause_POINT` says so on
//! stderr and waits for SIGUSR1; `fail_save_state` makes the state's save at the end of a sync fail as a full disk
//! would. The points: `after_retr` (message downloaded, not yet committed; reached once per
//! message, in list order, when its turn to be committed comes), `after_write_before_rename`
//! (Maildir: the first file of a commit written and synced, not renamed),
//! `after_rename_before_state` (committed, not recorded; once per message, in list order, before
//! its group is recorded), `between_dele_and_quit` (POP3, all DELEs sent), `after_list`
//! (pause: the listing is done).
//!
//! Without the feature every function here is a constant `false` or does nothing: no
//! environment variable can abort an application that embeds the library.

#[cfg(feature = "fault-injection")]
mod on {
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// True the N-th time `point` is reached, when `MAILCAT_FAULT=POINT[@N]` names it.
    pub(crate) fn reached(point: &str) -> bool {
        static REACHED: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);
        let Ok(configured) = std::env::var("MAILCAT_FAULT") else {
            return false;
        };
        let (name, nth) = match configured.split_once('@') {
            Some((name, n)) => (name, n.parse().unwrap_or(1)),
            None => (configured.as_str(), 1),
        };
        if name != point {
            return false;
        }
        let mut counts = REACHED.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts
            .get_or_insert_with(HashMap::new)
            .entry(point.to_owned())
            .or_insert(0);
        *count += 1;
        *count == nth
    }

    /// `pause_POINT`: says so on stderr and waits for SIGUSR1.
    pub(crate) async fn pause(point: &str) {
        if !reached(&format!("pause_{point}")) {
            return;
        }
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut resume) = signal(SignalKind::user_defined1()) else {
            return;
        };
        eprintln!("mailcat fetch: paused at {point} (test hook); SIGUSR1 resumes");
        resume.recv().await;
    }
}

#[cfg(feature = "fault-injection")]
pub(crate) use on::{pause, reached};

/// Without the feature, no point is ever reached.
#[cfg(not(feature = "fault-injection"))]
pub(crate) fn reached(_point: &str) -> bool {
    false
}

/// Without the feature, nothing pauses.
#[cfg(not(feature = "fault-injection"))]
pub(crate) async fn pause(_point: &str) {}

/// Aborts the process the N-th time `point` is reached (`MAILCAT_FAULT=POINT[@N]`).
pub(crate) fn abort_at(point: &str) {
    if reached(point) {
        std::process::abort();
    }
}
