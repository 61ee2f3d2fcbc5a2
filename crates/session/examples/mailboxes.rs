//! IMAP mailbox operations: list every mailbox with its counts, and name the Sent one; with
//! `append FILE MAILBOX`, store a message there (as a client saving a sent copy does), `\Seen`.
//!
//! ```sh
//! MAILCAT_EMAIL=alice@example.com MAILCAT_PASSWORD=... \
//! MAILCAT_INCOMING=imaps://imap.example.com \
//!   cargo run -p mailcat-session --example mailboxes -- [append message.eml Archive]
//! ```
//! (`MAILCAT_CA_FILE` trusts a private CA, e.g. the lab's.)

use mailcat_session::imap::{Flag, Mailbox};
use mailcat_session::{Account, Credential, Endpoint, Incoming, TlsSettings};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    let Incoming::Imap { mut session, .. } = account.receive().await? else {
        return Err("mailbox operations need an IMAP server (imaps://...)".into());
    };

    if let [verb, file, mailbox] = args.as_slice() {
        if verb != "append" {
            return Err("usage: mailboxes [append FILE MAILBOX]".into());
        }
        let message = std::fs::read(file)?;
        let mailbox = Mailbox::new(mailbox.as_str())?;
        // The server's copy gets a UID of its own; UIDPLUS servers say which.
        match session
            .append(&mailbox, &message, &[Flag::Seen], None)
            .await?
        {
            Some(at) => println!(
                "appended as UID {} (UIDVALIDITY {})",
                at.uid, at.uid_validity
            ),
            None => println!("appended"),
        }
    }

    let sent = session.sent_mailbox().await?.map(|m| m.name);
    for info in session.list().await? {
        let mailbox = info.mailbox()?;
        // A `\Noselect` name (a folder of folders only) has no counts.
        let counts = match session.status(&mailbox).await {
            Ok(c) => format!("{:>6} messages, {:>5} unseen", c.messages, c.unseen),
            Err(_) => "(no messages of its own)".to_owned(),
        };
        let mark = if sent.as_ref() == Some(&info.name) {
            "  (Sent)"
        } else {
            ""
        };
        println!("{:<30} {counts}{mark}", info.name);
    }
    session.logout().await?;
    Ok(())
}
