pub mod cat;
pub mod check;
pub mod common;
pub mod decode;
pub mod fetch;
pub mod list;
pub mod mailboxes;
pub mod watch;
