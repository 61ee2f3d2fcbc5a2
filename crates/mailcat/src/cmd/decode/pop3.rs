//! `mailcat decode pop3`.
