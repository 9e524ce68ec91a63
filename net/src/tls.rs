//! TLS identities and pinned-certificate configs.
//!
//! Every wask endpoint that accepts connections has a self-signed
//! certificate for the name [`SERVER_NAME`] (or one given by the operator).
//! Whoever connects trusts exactly the certificate it was handed (through the
//! scheduler file, or by the scheduler for peer workers): a pinned root of
//! one, verified by rustls' normal WebPKI path.

use crate::NetError;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

/// The TLS server name every wask certificate carries.
pub const SERVER_NAME: &str = "wask";

/// A certificate and its private key.
#[derive(Clone)]
pub struct Identity {
    /// DER certificate.
    pub cert_der: Vec<u8>,
    /// DER PKCS#8 private key.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_der", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh self-signed certificate for [`SERVER_NAME`] and `localhost`.
    pub fn self_signed() -> Result<Identity, NetError> {
        let ck = rcgen::generate_simple_self_signed(vec![
            SERVER_NAME.to_string(),
            "localhost".to_string(),
        ])
        .map_err(|e| NetError::Tls(e.to_string()))?;
        Ok(Identity {
            cert_der: ck.cert.der().to_vec(),
            key_der: ck.signing_key.serialize_der(),
        })
    }

    /// An identity from PEM files' contents (certificate and PKCS#8 key).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Identity, NetError> {
        use rustls::pki_types::pem::PemObject;
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| NetError::Tls(format!("certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| NetError::Tls(format!("key: {e}")))?;
        Ok(Identity {
            cert_der: cert.to_vec(),
            key_der: key.secret_der().to_vec(),
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server config presenting `identity`, offering `alpns`.
pub fn server_config(
    identity: &Identity,
    alpns: &[&[u8]],
) -> Result<rustls::ServerConfig, NetError> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone()));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(identity.cert_der.clone())], key)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    cfg.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    cfg.max_early_data_size = 0;
    Ok(cfg)
}

/// A rustls client config trusting only `pinned_cert_der`, asking for `alpn`.
pub fn client_config(
    pinned_cert_der: &[u8],
    alpn: &[u8],
) -> Result<rustls::ClientConfig, NetError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(pinned_cert_der.to_vec()))
        .map_err(|e| NetError::Tls(format!("pinned certificate: {e}")))?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}
