//! wask-net: the transport every wask process shares.
//!
//! # Layout
//! - [`tls`]: self-signed identities and TLS configs that pin exactly one
//!   peer certificate (no web PKI: a cluster trusts the certificate it was
//!   given in its scheduler file).
//! - [`endpoint`]: QUIC endpoints with wask's transport settings and ALPNs.
//! - [`framed`]: the control stream: batched length-prefixed frames.
//! - [`data`]: one unidirectional stream per large payload.
//! - [`secret`]: constant-time secret comparison.
//! - [`secret_file`]: the cluster secret on disk.
//! - [`shutdown`]: waiting for Ctrl-C or SIGTERM.
//! - [`error`]: [`NetError`] and the application close codes.
#![warn(missing_docs)]

pub mod data;
pub mod endpoint;
pub mod error;
pub mod framed;
pub mod secret;
pub mod secret_file;
pub mod shutdown;
pub mod tls;

pub use error::{NetError, codes};
pub use secret::secrets_equal;
pub use tls::Identity;
