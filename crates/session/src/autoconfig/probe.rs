//! The last autoconfig stage: host names guessed from the domain (`imap.`, `mail.`, `smtp.` …),
//! each confirmed by connecting. A guess counts only when the server answers with TLS, a
//! certificate valid for the guessed name, and the greeting and capabilities of the protocol
//! guessed: a web server on `mail.example.com` or another protocol's port is not a mail server.

use std::sync::Arc;
use std::time::Duration;

use mailcat_transport::{Endpoint, Protocol, Security, Timeouts};
use rustls::ClientConfig;
use tokio::task::JoinSet;

/// The guesses for `domain`, preferred first: incoming (IMAP before POP3, implicit TLS before
/// STARTTLS, as RFC 8314 advises) and outgoing (submission with implicit TLS, then STARTTLS).
pub fn guesses(domain: &str) -> (Vec<Endpoint>, Vec<Endpoint>) {
    let at = |protocol, prefix: &str, security, port| {
        Endpoint::new(protocol, format!("{prefix}.{domain}"), security).with_port(port)
    };
    let incoming = vec![
        at(Protocol::Imap, "imap", Security::ImplicitTls, 993),
        at(Protocol::Imap, "mail", Security::ImplicitTls, 993),
        at(Protocol::Imap, "imap", Security::StartTls, 143),
        at(Protocol::Imap, "mail", Security::StartTls, 143),
        at(Protocol::Pop3, "pop", Security::ImplicitTls, 995),
        at(Protocol::Pop3, "pop3", Security::ImplicitTls, 995),
        at(Protocol::Pop3, "mail", Security::ImplicitTls, 995),
        at(Protocol::Pop3, "pop3", Security::StartTls, 110),
    ];
    let outgoing = vec![
        at(Protocol::Smtp, "smtp", Security::ImplicitTls, 465),
        at(Protocol::Smtp, "mail", Security::ImplicitTls, 465),
        at(Protocol::Smtp, "smtp", Security::StartTls, 587),
        at(Protocol::Smtp, "mail", Security::StartTls, 587),
    ];
    (incoming, outgoing)
}

/// Connects to every candidate at once (TLS or STARTTLS, greeting, capabilities), each within
/// `timeouts` and all within `limit`, and answers, in the candidates' order, whether each is a
/// working server of its protocol (or why not).
pub async fn confirm(
    candidates: &[Endpoint],
    tls: Arc<ClientConfig>,
    timeouts: &Timeouts,
    limit: Duration,
) -> Vec<(Endpoint, Result<(), String>)> {
    let mut probes = JoinSet::new();
    for (index, candidate) in candidates.iter().enumerate() {
        let candidate = candidate.clone();
        let tls = Arc::clone(&tls);
        let timeouts = *timeouts;
        probes.spawn(async move {
            let outcome = match crate::open(&candidate, tls, &timeouts, &mut |_| {}).await {
                Ok(opened) => {
                    opened.connection.close().await;
                    Ok(())
                }
                Err(error) => Err(error.to_string()),
            };
            (index, outcome)
        });
    }
    let mut outcomes: Vec<Result<(), String>> =
        vec![Err(format!("no answer within {limit:?}")); candidates.len()];
    let _ = tokio::time::timeout(limit, async {
        while let Some(joined) = probes.join_next().await {
            if let Ok((index, outcome)) = joined {
                outcomes[index] = outcome;
            }
        }
    })
    .await;
    probes.abort_all();
    candidates.iter().cloned().zip(outcomes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_prefer_imap_and_implicit_tls() {
        let (incoming, outgoing) = guesses("example.com");
        assert_eq!(incoming[0].url(), "imaps://imap.example.com:993");
        assert_eq!(incoming[2].url(), "imap://imap.example.com:143");
        assert!(
            incoming
                .iter()
                .take_while(|e| e.protocol == Protocol::Imap)
                .count()
                == 4
        );
        assert_eq!(outgoing[0].url(), "smtps://smtp.example.com:465");
        assert_eq!(outgoing[2].url(), "smtp://smtp.example.com:587");
        assert!(incoming
            .iter()
            .chain(&outgoing)
            .all(|e| e.security != Security::DangerousPlaintext));
    }
}
