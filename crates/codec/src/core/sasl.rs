//! SASL payloads.
