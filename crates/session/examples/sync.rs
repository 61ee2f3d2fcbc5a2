//! Fetch what is new into a Maildir, durably, as `mailcat fetch` does: run it again and only
//! new mail comes; kill it at any moment and nothing is lost or stored twice. With `--delete`,
//! what is stored is then deleted on the server. Ctrl-C stops it cleanly.
//!
//! ```sh
//! MAILCAT_EMAIL=alice@example.com MAILCAT_PASSWORD=... \
//! MAILCAT_INCOMING=imaps://imap.example.com \
//!   cargo run -p mailcat-session --example sync -- ~/Mail/inbox [--delete]
//! ```
//! (`MAILCAT_INCOMING=pop3s://...` fetches over POP3; `MAILCAT_CA_FILE` trusts a private CA,
//! e.g. the lab's.)

use mailcat_session::store::{FetchState, Source, StoreLock};
use mailcat_session::sync::{Event, MaildirStore, StopReason, Sync};
use mailcat_session::{Account, Credential, Endpoint, TlsSettings};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        return Err("usage: sync MAILDIR [--delete]".into());
    };
    let delete = args.next().as_deref() == Some("--delete");
    let email = env("MAILCAT_EMAIL");
    let incoming = Endpoint::parse_url(&env("MAILCAT_INCOMING"))?;
    let mut builder = Account::builder(
        email.clone(),
        Credential::password(email.clone(), env("MAILCAT_PASSWORD")),
    )
    .incoming(incoming.clone());
    if let Ok(ca) = std::env::var("MAILCAT_CA_FILE") {
        builder = builder.tls(TlsSettings {
            extra_ca_files: vec![ca.into()],
            ..TlsSettings::default()
        });
    }
    let account = builder.build()?;

    // One sync at a time into a store; the record of what was fetched lives beside it.
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let _lock = StoreLock::try_acquire(&dir.join(".mailcat.lock"))?;
    let mut state = FetchState::load(dir.join(".mailcat-state.json"))?;
    let mut store = MaildirStore::open(dir)?;
    let imap = incoming.protocol == mailcat_session::Protocol::Imap;
    let source = Source {
        login: &email,
        host: &incoming.host,
        mailbox: imap.then_some("INBOX"),
    };

    let session = account.receive().await?;
    let (mut total, mut done) = (0, 0);
    let mut sync = Sync::new(&mut store, &mut state, source).on_event(|event| match event {
        Event::Listed { messages, bytes } => {
            total = messages;
            eprintln!("{messages} new ({bytes} bytes)");
        }
        Event::Done { .. } => {
            done += 1;
            eprint!("\r{done}/{total}");
        }
        _ => {}
    });
    if delete {
        sync = sync.delete_stored();
    }
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match sync.run(session, ctrl_c).await {
        Ok(report) => {
            eprintln!();
            println!(
                "{} stored ({} bytes), {} deleted on the server",
                report.stored, report.bytes, report.deleted
            );
            Ok(())
        }
        // Whatever stopped it, what was stored is stored, and nothing was deleted unless
        // everything new was stored first.
        Err(stopped) => {
            eprintln!();
            if let StopReason::Cancelled = stopped.reason {
                println!("stopped: {} stored, nothing deleted", stopped.report.stored);
                return Ok(());
            }
            Err(stopped.into())
        }
    }
}
