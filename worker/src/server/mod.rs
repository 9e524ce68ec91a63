//! The worker's QUIC shell.
