//! Pieces shared by the three protocols: the decode contract, line framing, dot-stuffing,
//! validated text, SASL, and the glue between nom and [`crate::DecodeError`].

pub mod decode;
pub mod dot;
pub mod line;
pub(crate) mod parse;
pub mod sasl;
pub mod secret;
pub mod text;
