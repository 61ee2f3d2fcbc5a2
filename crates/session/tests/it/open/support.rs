//! Test support: the transport's (certificates made with rcgen, a scripted TCP server that
//! plays a script and records what it received), shared rather than copied, and
//! [`mailcat_session::open`] under a hard wall-clock limit.

#[path = "../../../../transport/tests/it/support/mod.rs"]
mod transport;

use std::sync::Arc;
use std::time::Duration;

use mailcat_session::Opened;
use mailcat_transport::{Endpoint, Error, Timeouts};
use rustls::ClientConfig;
use tokio::time::timeout;

pub(super) use transport::*;

/// Runs [`mailcat_session::open`] with `config` and [`quick`] timeouts, inside a hard wall-clock limit.
pub(super) async fn open(endpoint: &Endpoint, config: Arc<ClientConfig>) -> Result<Opened, Error> {
    open_with(endpoint, config, &quick()).await
}

/// [`open`] with other timeouts (still under a hard 8 s limit).
pub(super) async fn open_with(
    endpoint: &Endpoint,
    config: Arc<ClientConfig>,
    timeouts: &Timeouts,
) -> Result<Opened, Error> {
    timeout(
        Duration::from_secs(8),
        mailcat_session::open(endpoint, config, timeouts, &mut |_| {}),
    )
    .await
    .expect("open did not return within the hard 8 s limit")
}
