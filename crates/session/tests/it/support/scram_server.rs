//! The server side of SCRAM-SHA-256 with RFC 7677's example (user `user`, password `pencil`,
//! its salt, 4096 iterations and its server nonce), for scripted servers. The client's nonce is
//! random, so the server's messages are computed from the client's lines, statelessly: the
//! client-final message's nonce is the client's nonce followed by RFC 7677's server part, which
//! gives back everything the AuthMessage needs. The client's proof is checked too.
#![allow(dead_code, clippy::unwrap_used)]

use base64::Engine;
use ring::{digest, hmac, pbkdf2};

/// RFC 7677 §3's login and password.
pub(crate) const USER: &str = "user";
/// RFC 7677 §3's password.
pub(crate) const PASSWORD: &str = "pencil";
const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const ITERATIONS: u32 = 4096;
/// RFC 7677 §3's server part of the nonce.
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|_| panic!("the client sent {text:?}, not base64"));
    String::from_utf8(bytes).unwrap()
}

/// The last word of a line: the base64 of `AUTH SCRAM-SHA-256 <ir>`, or a whole response line.
fn payload(line: &str) -> String {
    unb64(line.rsplit(' ').next().unwrap_or(line))
}

fn sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn server_first_for(client_nonce: &str) -> String {
    format!("r={client_nonce}{SERVER_NONCE},s={SALT},i={ITERATIONS}")
}

/// The base64 server-first message answering the line that carries the client-first message.
pub(crate) fn server_first(line: &str) -> String {
    let client_first = payload(line);
    let bare = client_first
        .strip_prefix("n,,")
        .unwrap_or_else(|| panic!("not a client-first message: {client_first:?}"));
    assert!(bare.starts_with(&format!("n={USER},r=")), "{bare:?}");
    let nonce = bare.split_once(",r=").unwrap().1;
    b64(server_first_for(nonce).as_bytes())
}

/// `v=<ServerSignature>` for the line that carries the client-final message, after checking the
/// client's proof; with `forge`, a signature that is wrong.
fn server_final_for(line: &str, forge: bool) -> String {
    let client_final = payload(line);
    let (without_proof, proof) = client_final.split_once(",p=").unwrap();
    let full_nonce = without_proof.strip_prefix("c=biws,r=").unwrap();
    let client_nonce = full_nonce.strip_suffix(SERVER_NONCE).unwrap();
    let auth_message = format!(
        "n={USER},r={client_nonce},{},{without_proof}",
        server_first_for(client_nonce)
    );
    let salt = base64::engine::general_purpose::STANDARD
        .decode(SALT)
        .unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(ITERATIONS).unwrap(),
        &salt,
        PASSWORD.as_bytes(),
        &mut salted,
    );
    let client_key = sign(&salted, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, &client_key);
    let client_signature = sign(stored_key.as_ref(), auth_message.as_bytes());
    let expected_proof: Vec<u8> = client_key
        .iter()
        .zip(&client_signature)
        .map(|(a, b)| a ^ b)
        .collect();
    assert_eq!(proof, b64(&expected_proof), "the client's proof");
    let mut signature = sign(&sign(&salted, b"Server Key"), auth_message.as_bytes());
    if forge {
        signature[0] ^= 0xff;
    }
    b64(format!("v={}", b64(&signature)).as_bytes())
}

/// The base64 server-final message (the right signature) for the client-final line.
pub(crate) fn server_final(line: &str) -> String {
    server_final_for(line, false)
}

/// A base64 server-final message whose signature is wrong: a server that does not know the
/// password (it took the client's proof and answers as if it had checked it).
pub(crate) fn forged_final(line: &str) -> String {
    server_final_for(line, true)
}
