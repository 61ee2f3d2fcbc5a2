//! `mailcat decode imap`.
