//! The CLI's words for the ways the library offers to trust a refused certificate: the library
//! says what can be done ([`mailcat_transport::TrustHint`]); only the CLI knows its options.

use mailcat_transport::TrustHint;

/// The hint line for a failure whose certificate the user could choose to trust, if any.
pub(crate) fn words(error: &mailcat_session::Error) -> Option<String> {
    Some(match error.trust_hint()? {
        TrustHint::TrustCa => {
            "to trust a private CA, give its certificate with --ca-file CA.pem".to_owned()
        }
        TrustHint::PinCertificate(fingerprint) => format!(
            "once the fingerprint is checked on the server, trust exactly this certificate with \
             --tls-fingerprint {fingerprint} (or --ca-file with the server's certificate file)"
        ),
        _ => return None,
    })
}
