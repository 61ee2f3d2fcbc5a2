//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same bodies the fuzz
//! targets run (the codec's, and mailcat-session's for autoconfig and the HTTPS client's URLs),
//! so every input that once found a bug stays a regression test under `cargo test`.

use std::path::{Path, PathBuf};

use mailcat_codec::fuzz;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read the corpus {}: {err}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "the corpus of {target} has only {} seeds",
        files.len()
    );
    files
        .into_iter()
        .map(|path| {
            let data = std::fs::read(&path).expect("corpus file");
            (path, data)
        })
        .collect()
}

fn replay(target: &str, body: fn(&[u8])) {
    for (path, data) in corpus(target) {
        let result = std::panic::catch_unwind(|| body(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn pop3_response() {
    replay("pop3_response", fuzz::pop3_response);
}

#[test]
fn smtp_reply() {
    replay("smtp_reply", fuzz::smtp_reply);
}

#[test]
fn dot_unstuff() {
    replay("dot_unstuff", fuzz::dot_unstuff);
}

#[test]
fn dot_stuff_roundtrip() {
    replay("dot_stuff_roundtrip", fuzz::dot_stuff_roundtrip);
}

#[test]
fn command_encode() {
    replay("command_encode", fuzz::command_encode);
}

#[test]
fn imap_response() {
    replay("imap_response", fuzz::imap_response);
}

#[test]
fn dns_response() {
    replay("dns_response", mailcat_session::fuzz::dns_response);
}

#[test]
fn autoconfig_xml() {
    replay("autoconfig_xml", mailcat_session::fuzz::autoconfig_xml);
}

#[test]
fn http_url() {
    replay("http_url", mailcat_session::fuzz::http_url);
}

#[test]
fn pop3_core() {
    replay("pop3_core", mailcat_session::fuzz::pop3_core);
}

#[test]
fn smtp_core() {
    replay("smtp_core", mailcat_session::fuzz::smtp_core);
}

#[test]
fn imap_core() {
    replay("imap_core", mailcat_session::fuzz::imap_core);
}

#[test]
fn opening_core() {
    replay("opening_core", mailcat_session::fuzz::opening_core);
}

#[test]
fn oauth2_response() {
    replay("oauth2_response", mailcat_session::fuzz::oauth2_response);
}

#[test]
fn autoconfig_names() {
    replay("autoconfig_names", mailcat_session::fuzz::autoconfig_names);
}

#[test]
fn command_lines() {
    replay("command_lines", fuzz::command_lines);
}

#[test]
fn reply_fields() {
    replay("reply_fields", fuzz::reply_fields);
}

#[test]
fn http_response() {
    replay("http_response", mailcat_session::fuzz::http_response);
}
