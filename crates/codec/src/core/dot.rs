//! Dot-stuffing and dot-unstuffing.
