//! TLS identities and pinned-certificate configs.
//!
//! Every wask endpoint that accepts connections presents a certificate: a
//! generated self-signed one for the name [`SERVER_NAME`], or one given by
//! the operator. Whoever connects trusts exactly one certificate it was
//! handed (through the scheduler file, `--tls-ca`, or by the scheduler for
//! peer workers), in one of two ways:
//!
//! - **Pinned**: the server presents that very certificate. Nothing else is
//!   checked (name, dates, issuer): it is the one we were told to expect.
//! - **As a CA**: the server presents a chain that rustls' WebPKI path
//!   validates up to it, and the leaf is valid for the DNS name
//!   [`SERVER_NAME`] (`wask`). The name is fixed rather than the host
//!   dialed because clients and workers usually dial an IP address out of a
//!   scheduler file; as with Nomad's `server.<region>.nomad`, a certificate
//!   for a wask scheduler says so by carrying that name.

use crate::NetError;
use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::sync::Arc;

/// The TLS server name clients check (and send as SNI): generated
/// certificates carry it, and a CA-issued certificate must have it among
/// its subject alternative names.
pub const SERVER_NAME: &str = "wask";

/// A certificate and its private key.
#[derive(Clone)]
pub struct Identity {
    /// DER certificate.
    pub cert_der: Vec<u8>,
    /// DER certificates presented after it: the intermediate CAs that
    /// link it to the CA clients trust (empty for a self-signed one).
    pub chain_der: Vec<Vec<u8>>,
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
            chain_der: Vec::new(),
            key_der: ck.signing_key.serialize_der(),
        })
    }

    /// An identity from PEM files' contents: the certificate first, then
    /// any intermediate CAs; a PKCS#8 key (`BEGIN PRIVATE KEY`).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Identity, NetError> {
        let mut certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NetError::Tls(format!("certificate: {e}")))?;
        if certs.is_empty() {
            return Err(NetError::Tls(
                "certificate: no certificate in the PEM".into(),
            ));
        }
        let cert_der = certs.remove(0);
        let key = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) {
            Ok(PrivateKeyDer::Pkcs8(key)) => key.secret_pkcs8_der().to_vec(),
            Ok(_) => {
                return Err(NetError::Tls(
                    "key: not PKCS#8 (`BEGIN PRIVATE KEY`); convert it with \
                     `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`"
                        .into(),
                ));
            }
            Err(e) => return Err(NetError::Tls(format!("key: {e}"))),
        };
        Ok(Identity {
            cert_der,
            chain_der: certs,
            key_der: key,
        })
    }
}

/// The DER certificate in `bytes`: the first one of a PEM file, or the
/// bytes themselves when they are not PEM (a DER file).
pub fn certificate_from_file(bytes: &[u8]) -> Result<Vec<u8>, NetError> {
    match std::str::from_utf8(bytes) {
        Ok(pem) if pem.contains("-----BEGIN") => CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|c| c.to_vec())
            .map_err(|e| NetError::Tls(format!("PEM certificate: {e}"))),
        _ => Ok(bytes.to_vec()),
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
        .with_single_cert(
            std::iter::once(&identity.cert_der)
                .chain(&identity.chain_der)
                .map(|c| CertificateDer::from(c.clone()))
                .collect(),
            key,
        )
        .map_err(|e| NetError::Tls(e.to_string()))?;
    cfg.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    cfg.max_early_data_size = 0;
    Ok(cfg)
}

/// A rustls client config trusting only `trusted_cert_der` (pinned, or as
/// the CA of the server's chain: see the module docs), asking for `alpn`.
pub fn client_config(
    trusted_cert_der: &[u8],
    alpn: &[u8],
) -> Result<rustls::ClientConfig, NetError> {
    let verifier = Arc::new(TrustOne::new(trusted_cert_der)?);
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}

/// Accepts the server's certificate if it is the trusted one, else if its
/// chain validates up to the trusted one (as a CA) for [`SERVER_NAME`].
/// Handshake signatures are always checked against the presented key.
#[derive(Debug)]
struct TrustOne {
    trusted: CertificateDer<'static>,
    as_ca: Arc<WebPkiServerVerifier>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl TrustOne {
    fn new(trusted_cert_der: &[u8]) -> Result<TrustOne, NetError> {
        let trusted = CertificateDer::from(trusted_cert_der.to_vec());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(trusted.clone())
            .map_err(|e| NetError::Tls(format!("trusted certificate: {e}")))?;
        let provider = provider();
        let algorithms = provider.signature_verification_algorithms;
        let as_ca = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| NetError::Tls(format!("trusted certificate: {e}")))?;
        Ok(TrustOne {
            trusted,
            as_ca,
            algorithms,
        })
    }
}

impl ServerCertVerifier for TrustOne {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.trusted.as_ref() {
            return Ok(ServerCertVerified::assertion());
        }
        self.as_ca
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
