//! POP3 command encoders.
