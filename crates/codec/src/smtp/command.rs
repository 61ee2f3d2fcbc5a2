//! SMTP command encoders.
