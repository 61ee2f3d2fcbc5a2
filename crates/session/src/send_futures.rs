//! The public futures are `Send`, so an app can run them on a multi-threaded runtime or
//! `tokio::spawn` them. Checked at compile time: if one stops being `Send`, this test module
//! no longer builds and names the future.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use tokio::net::TcpStream;

use crate::imap::ImapSession;
use crate::oauth2::OAuth2;
use crate::pop3::Pop3Session;
use crate::smtp::{Envelope, MessageInfo, SmtpSession};
use crate::{Account, Credential, Incoming, Listing, MessageId};

fn send<T: Send>(_: T) {}

/// Never called: it only has to compile.
#[allow(dead_code, clippy::too_many_arguments)]
async fn futures(
    account: &Account,
    incoming: &mut Incoming,
    listing: &mut Listing,
    id: &MessageId,
    imap: &mut ImapSession<TcpStream>,
    pop3: &mut Pop3Session<TcpStream>,
    smtp: &mut SmtpSession<TcpStream>,
    oauth: Arc<OAuth2>,
    credential: &Credential,
    envelope: &Envelope,
    info: &MessageInfo,
) {
    let mut sink = tokio::io::sink();
    let mut message = tokio::io::empty();
    send(account.receive());
    send(account.send_session());
    send(account.send(envelope, &mut message, info));
    send(incoming.list(None, crate::ListDetail::Headers));
    send(incoming.list_start(None, Some(20)));
    send(incoming.list_next(listing, crate::ListDetail::Headers));
    send(incoming.fetch(id, &mut sink));
    send(incoming.delete(std::slice::from_ref(id)));
    send(imap.noop());
    send(imap.list());
    send(imap.idle(std::time::Duration::from_secs(1)));
    send(pop3.stat());
    send(pop3.retrieve(1, &mut sink));
    send(smtp.noop());
    send(smtp.send(envelope, &mut message, info));
    send(credential.secret());
    send(credential.renew_refused_token());
    send(oauth.browser_start());
    send(oauth.device_start());
    send(oauth.access_token());
    send(oauth.logout());
    send(crate::autoconfig::discover(
        "a@example.com",
        &crate::autoconfig::Discovery::default(),
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_futures_are_send() {
    // `futures` above is type-checked although never called: it names every public future.
    // Here one of them really runs on another thread, as an app's would.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let endpoint = |protocol| {
        mailcat_transport::Endpoint::new(
            protocol,
            "127.0.0.1",
            mailcat_transport::Security::ImplicitTls,
        )
        .with_port(port)
    };
    let account = Account::new(
        "a@example.com",
        Credential::password("a", "pw"),
        endpoint(mailcat_transport::Protocol::Imap),
        endpoint(mailcat_transport::Protocol::Smtp),
    );
    let _ = futures;
    let result = tokio::spawn(async move { account.receive().await.map(|_| ()) })
        .await
        .unwrap();
    assert!(result.is_err(), "nothing listens on port {port}");
}
