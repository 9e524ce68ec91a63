//! Which certificates a wask client accepts: real QUIC handshakes on
//! loopback between a server presenting an identity and a client trusting
//! one certificate, pinned or as a CA (see `wask_net::tls`).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, Issuer, KeyPair};
use std::time::Duration;
use wask_net::{Identity, NetError, endpoint};

const ALPN: &[u8] = b"wask-tls-test";

/// A CA certificate (PEM) and the issuer that signs with its key.
fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf for `names`, signed by `issuer`, as PEM files would hold it:
/// the certificate followed by `chain`, and the PKCS#8 key.
fn leaf(names: &[&str], issuer: &Issuer<'_, KeyPair>, chain: &[String]) -> Identity {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, issuer)
        .unwrap();
    let pem = std::iter::once(cert.pem())
        .chain(chain.iter().cloned())
        .collect::<String>();
    Identity::from_pem(&pem, &key.serialize_pem()).unwrap()
}

/// Connects a client trusting `trusted` to a server presenting `identity`.
async fn handshake(identity: &Identity, trusted: &[u8]) -> Result<(), NetError> {
    let server = endpoint::server("127.0.0.1:0".parse().unwrap(), identity, &[ALPN]).unwrap();
    let addr = server.local_addr().unwrap();
    let accepting = tokio::spawn(async move {
        if let Some(incoming) = server.accept().await {
            // Held until the client is done: dropping it would close it.
            return incoming.await.ok();
        }
        None
    });
    let client = endpoint::client(addr).unwrap();
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        endpoint::connect(&client, addr, trusted, ALPN),
    )
    .await
    .expect("the handshake ended neither way");
    accepting.abort();
    connected.map(|_| ())
}

#[tokio::test]
async fn generated_certificates_are_pinned() {
    let a = Identity::self_signed().unwrap();
    let b = Identity::self_signed().unwrap();
    handshake(&a, &a.cert_der).await.unwrap();
    assert!(handshake(&a, &b.cert_der).await.is_err());
}

#[tokio::test]
async fn a_ca_issued_certificate_for_wask() {
    let ca = new_ca("wask test CA");
    let identity = leaf(&["wask", "scheduler.example"], &ca, &[]);
    // Trusting the CA: the chain and the name `wask` are checked.
    handshake(&identity, ca.der()).await.unwrap();
    // Pinning the certificate itself (what a scheduler file carries).
    handshake(&identity, &identity.cert_der).await.unwrap();
    // Another CA: refused.
    let stranger = new_ca("another CA");
    let err = handshake(&identity, stranger.der()).await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn through_the_ca_the_name_wask_is_required() {
    let ca = new_ca("wask test CA");
    let identity = leaf(&["scheduler.example", "127.0.0.1"], &ca, &[]);
    let err = handshake(&identity, ca.der()).await.unwrap_err();
    assert!(
        err.to_string().contains("not valid for name \"wask\""),
        "{err}"
    );
    // Pinned exactly, the name does not matter.
    handshake(&identity, &identity.cert_der).await.unwrap();
}

#[tokio::test]
async fn intermediates_are_presented() {
    let root = new_ca("wask root CA");
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "wask intermediate CA");
    let intermediate =
        CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), &root).unwrap();
    let with_chain = leaf(&["wask"], &intermediate, &[intermediate.pem()]);
    assert_eq!(with_chain.chain_der, vec![intermediate.der().to_vec()]);
    handshake(&with_chain, root.der()).await.unwrap();

    let mut without_chain = with_chain.clone();
    without_chain.chain_der.clear();
    assert!(handshake(&without_chain, root.der()).await.is_err());
}

#[test]
fn pem_files_are_checked() {
    let ca = new_ca("wask test CA");
    let key = KeyPair::generate().unwrap().serialize_pem();
    let err = Identity::from_pem("", &key).unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
    let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
    let err = Identity::from_pem(&ca.pem(), sec1).unwrap_err();
    assert!(err.to_string().contains("not PKCS#8"), "{err}");
}
