//! List the inbox and save the newest message to a file.
//!
//! ```sh
//! MAILCAT_EMAIL=alice@example.com MAILCAT_PASSWORD=... \
//! MAILCAT_INCOMING=imaps://imap.example.com \
//!   cargo run -p mailcat-session --example receive -- newest.eml
//! ```
//! (`MAILCAT_CA_FILE` trusts a private CA, e.g. the lab's.)

use mailcat_session::{Account, Credential, ListDetail};
use mailcat_session::{Endpoint, TlsSettings};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let output = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "newest.eml".into());
    // Receive-only: the account needs no outgoing server.
    let mut builder = Account::builder(
        env("MAILCAT_EMAIL"),
        Credential::password(env("MAILCAT_EMAIL"), env("MAILCAT_PASSWORD")),
    )
    .incoming(Endpoint::parse_url(&env("MAILCAT_INCOMING"))?);
    if let Ok(ca) = std::env::var("MAILCAT_CA_FILE") {
        builder = builder.tls(TlsSettings {
            extra_ca_files: vec![ca.into()],
            ..TlsSettings::default()
        });
    }
    let account = builder.build()?;

    let mut inbox = account.receive().await?; // connect, TLS, log in
    let messages = inbox.list(None, ListDetail::Headers).await?;
    for message in &messages {
        println!(
            "{:>8} {:>9} {}",
            message.id,
            message.size.unwrap_or(0),
            message.headers.subject.as_deref().unwrap_or("")
        );
    }
    if let Some(newest) = messages.last() {
        let mut file = tokio::fs::File::create(&output).await?;
        let bytes = inbox.fetch(&newest.id, &mut file).await?; // streamed, never whole in memory
        file.sync_all().await?;
        println!("saved {bytes} bytes to {output}");
    }
    inbox.close().await?;
    Ok(())
}
