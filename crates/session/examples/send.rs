//! Send a message read from a file, with the account's one credential.
//!
//! ```sh
//! MAILCAT_EMAIL=alice@example.com MAILCAT_PASSWORD=... \
//! MAILCAT_OUTGOING=smtp://smtp.example.com:587 \
//!   cargo run -p mailcat-session --example send -- message.eml bob@example.org
//! ```

use mailcat_session::smtp::{Envelope, MessageInfo};
use mailcat_session::{Account, Credential};
use mailcat_session::{Endpoint, TlsSettings};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(to)) = (args.next(), args.next()) else {
        return Err("usage: send MESSAGE-FILE RECIPIENT".into());
    };
    // Send-only: the account needs no incoming server.
    let mut builder = Account::builder(
        env("MAILCAT_EMAIL"),
        Credential::password(env("MAILCAT_EMAIL"), env("MAILCAT_PASSWORD")),
    )
    .outgoing(Endpoint::parse_url(&env("MAILCAT_OUTGOING"))?);
    if let Ok(ca) = std::env::var("MAILCAT_CA_FILE") {
        builder = builder.tls(TlsSettings {
            extra_ca_files: vec![ca.into()],
            ..TlsSettings::default()
        });
    }
    let account = builder.build()?;

    let mut file = tokio::fs::File::open(&path).await?;
    let info = MessageInfo::scan(&mut file).await?; // size and 8-bit, for SIZE and BODY=8BITMIME
    let envelope = Envelope {
        from: Some(account.email.parse()?),
        to: vec![to.parse()?],
        ..Default::default()
    };
    let report = account.send(&envelope, &mut file, &info).await?; // streamed, dot-stuffed
    println!(
        "accepted for {:?}: {}",
        report
            .accepted
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        report.reply
    );
    Ok(())
}
