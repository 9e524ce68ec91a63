//! wask-net: the transport every wask process shares.
//!
//! # Layout
//! - [`tls`]: identities (generated self-signed, or given as PEM) and
//!   client configs that trust exactly one certificate: pinned, or as the
//!   CA of the server's chain for the name `wask` (no system roots).
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
