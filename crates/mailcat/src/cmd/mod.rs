pub mod check;
pub mod decode;
