//! `-v`: the protocol trace on stderr.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Prints the transport's `C:`/`S:` trace (target `mailcat::trace`) on stderr. Credentials are
/// redacted and control characters escaped by the transport before they get here.
pub(crate) fn enable() {
    let filter =
        Targets::new().with_target(mailcat_transport::trace::TARGET, tracing::Level::DEBUG);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_level(false)
        .without_time();
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .init();
}
