//! How a failed command tells why: a line on stderr (`mailcat COMMAND: what is wrong`, and
//! `  hint: …` when there is one), and with `--json` also one JSON object on stdout:
//!
//! ```json
//! {"error":{"command":"list","kind":"auth","exit_code":77,"message":"…","hint":"…"}}
//! ```
//!
//! stdout, as npm, yarn and cargo put their JSON errors: a program that reads the JSON reads
//! stdout only, and finds there either the command's output or this object (`jq .error`);
//! stderr keeps the text for people and logs. `kind` names the exit code ([`crate::exit::kind`]),
//! so a script can branch on either.
//!
//! Exactly one object per failed run: the first failure told is the one in the object, and a
//! command that failed without telling through here (a message printed by its own code) gets
//! one at exit from [`at_exit`], pointing at stderr.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Map, Value};

use crate::exit;

/// `--json` was given.
static JSON: AtomicBool = AtomicBool::new(false);
/// The run's outcome has been told on stdout: an error object, or a JSON answer that carries
/// the failure itself (`check`'s report with `"ok": false`).
static TOLD: AtomicBool = AtomicBool::new(false);

/// Says whether failures are also told as JSON on stdout (`--json`).
pub(crate) fn use_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// True with `--json`.
pub(crate) fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Tells a failure: `mailcat COMMAND: MESSAGE` (`mailcat: MESSAGE` when `command` is empty) and
/// the hint on stderr, and with `--json` the error object on stdout. `message` and `hint` are
/// printed as given: make server text terminal-safe first.
pub(crate) fn tell(command: &str, message: &str, hint: Option<&str>, code: u8) {
    if command.is_empty() {
        eprintln!("mailcat: {message}");
    } else {
        eprintln!("mailcat {command}: {message}");
    }
    if let Some(hint) = hint {
        eprintln!("  hint: {hint}");
    }
    tell_json(command, message, hint, code);
}

/// The JSON half of [`tell`], for a failure already printed on stderr.
pub(crate) fn tell_json(command: &str, message: &str, hint: Option<&str>, code: u8) {
    if json() && !TOLD.swap(true, Ordering::Relaxed) {
        // Not `outln!`, which ends the run with 0 when stdout is closed: the failure's exit
        // code must survive a reader that went away.
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", error_object(command, message, hint, code))
            .and_then(|()| stdout.flush());
    }
}

/// The command's JSON answer carries its failure itself (`check`'s report, `autoconfig` with
/// nothing found): no error object follows it.
pub(crate) fn answered() {
    TOLD.store(true, Ordering::Relaxed);
}

/// At the end of a run that exits with `code`: a failure nothing told as JSON yet gets its
/// object now (its reason is on stderr).
pub(crate) fn at_exit(command: &str, code: u8) {
    if code != exit::OK {
        tell_json(
            command,
            &format!(
                "mailcat {command} failed with exit code {code} ({}); the reason is on stderr",
                exit::kind(code)
            ),
            None,
            code,
        );
    }
}

/// `{"error": {"command", "kind", "exit_code", "message", "hint"?}}`.
fn error_object(command: &str, message: &str, hint: Option<&str>, code: u8) -> Value {
    let mut error = Map::new();
    if !command.is_empty() {
        error.insert("command".into(), command.into());
    }
    error.insert("kind".into(), exit::kind(code).into());
    error.insert("exit_code".into(), code.into());
    error.insert("message".into(), message.into());
    if let Some(hint) = hint {
        error.insert("hint".into(), hint.into());
    }
    json!({ "error": error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_names_command_kind_code_message_and_hint() {
        let object = error_object("list", "refused the login", Some("check the password"), 77);
        assert_eq!(
            object.to_string(),
            r#"{"error":{"command":"list","kind":"auth","exit_code":77,"message":"refused the login","hint":"check the password"}}"#
        );
        let object = error_object("", "bad file", None, 78);
        assert_eq!(
            object.to_string(),
            r#"{"error":{"kind":"config","exit_code":78,"message":"bad file"}}"#
        );
    }
}
