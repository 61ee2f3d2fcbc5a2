//! `mailcat decode --help`: only the options that apply to decoding.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mailcat"))
        .args(args)
        .output()
        .expect("mailcat runs");
    assert_eq!(output.status.code(), Some(0));
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

#[test]
fn decode_help_lists_only_its_own_options() {
    let text = help(&["decode", "--help"]);
    assert!(text.contains("--after <CMD>"), "{text}");
    for global in [
        "--account",
        "--config",
        "--email",
        "--incoming",
        "--password-cmd",
        "--oauth2-token-cmd",
        "--allow-plaintext",
        "--tls-fingerprint",
        "--timeout",
        "--json",
        "--verbose",
    ] {
        assert!(!text.contains(global), "{global} in:\n{text}");
    }
    // The network commands keep them.
    let text = help(&["list", "--help"]);
    assert!(text.contains("--account"), "{text}");
    assert!(text.contains("--password-cmd"), "{text}");
}
