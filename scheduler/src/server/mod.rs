//! The QUIC shell around the core.
