//! Where a scheduler is: an address and the certificate to trust, given
//! directly, read from a scheduler file (JSON written by
//! `wask-scheduler --scheduler-file`), or a `host:port` with a certificate
//! file (`tls_ca`, or `$WASK_TLS_CA`).

use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A scheduler's address and certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerAddress {
    /// UDP address of the scheduler.
    pub addr: SocketAddr,
    /// The DER certificate the client trusts: the scheduler's own (pinned),
    /// or the CA that issued it (see `wask_net::tls`).
    pub cert_der: Vec<u8>,
}

/// The environment variable naming the certificate file to trust when a
/// scheduler is given as `host:port`.
pub const TLS_CA_ENV: &str = "WASK_TLS_CA";

/// Reads a certificate file (PEM, first certificate, or DER).
pub fn read_certificate(path: &Path) -> Result<Vec<u8>> {
    let err = |message: String| Error::Io {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    wask_net::tls::certificate_from_file(&bytes).map_err(|e| err(e.to_string()))
}

pub use wask_proto::scheduler_file::SchedulerFile;

impl SchedulerAddress {
    /// Reads a scheduler file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<SchedulerAddress> {
        let path = path.as_ref();
        let err = |message: String| Error::Io {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let file: SchedulerFile = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let addr = resolve(&file.address).map_err(err)?;
        let cert_der = file
            .cert_der()
            .ok_or_else(|| err("cert_der_hex is not hex".into()))?;
        Ok(SchedulerAddress { addr, cert_der })
    }

    /// The scheduler file's contents for this address.
    pub fn to_file(&self) -> SchedulerFile {
        SchedulerFile::new(self.addr.to_string(), &self.cert_der)
    }

    /// Writes a scheduler file (atomically: temp file, then rename).
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let err = |e: std::io::Error| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let json = serde_json::to_string_pretty(&self.to_file()).expect("plain struct");
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

fn resolve(s: &str) -> std::result::Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("bad address {s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {s:?} resolves to nothing"))
}

/// What [`Client::connect`](crate::Client::connect) accepts: a
/// [`SchedulerAddress`], the path of a scheduler file, or a string that is
/// either: the path of an existing file, else a `host:port` address (whose
/// certificate to trust comes from `tls_ca` or `$WASK_TLS_CA`).
pub trait ToScheduler: Sized {
    /// Resolves to an address and certificate.
    fn to_scheduler(self) -> Result<SchedulerAddress> {
        self.to_scheduler_trusting(None)
    }

    /// Resolves to an address, trusting the certificate in `tls_ca` when
    /// given (instead of the one from a scheduler file or address).
    fn to_scheduler_trusting(self, tls_ca: Option<&Path>) -> Result<SchedulerAddress>;
}

/// `target`'s address with `tls_ca`'s certificate, if given.
fn trusting(mut target: SchedulerAddress, tls_ca: Option<&Path>) -> Result<SchedulerAddress> {
    if let Some(path) = tls_ca {
        target.cert_der = read_certificate(path)?;
    }
    Ok(target)
}

/// `host:port` (a name or an IP, IPv6 in brackets) rather than a path.
fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains(['/', '\\']) && port.parse::<u16>().is_ok()
    })
}

/// A string target: an existing file is a scheduler file; otherwise a
/// `host:port` is an address; anything else is a (missing) scheduler file.
fn from_str_target(s: &str, tls_ca: Option<&Path>) -> Result<SchedulerAddress> {
    if Path::new(s).is_file() || !is_host_port(s) {
        return trusting(SchedulerAddress::from_file(s)?, tls_ca);
    }
    let addr = resolve(s).map_err(|message| Error::Io {
        path: s.to_string(),
        message,
    })?;
    let ca = match tls_ca {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os(TLS_CA_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| Error::NoTrustedCertificate {
                address: s.to_string(),
            })?,
    };
    Ok(SchedulerAddress {
        addr,
        cert_der: read_certificate(&ca)?,
    })
}

impl ToScheduler for SchedulerAddress {
    fn to_scheduler_trusting(self, tls_ca: Option<&Path>) -> Result<SchedulerAddress> {
        trusting(self, tls_ca)
    }
}

impl ToScheduler for &SchedulerAddress {
    fn to_scheduler_trusting(self, tls_ca: Option<&Path>) -> Result<SchedulerAddress> {
        trusting(self.clone(), tls_ca)
    }
}

impl ToScheduler for &Path {
    fn to_scheduler_trusting(self, tls_ca: Option<&Path>) -> Result<SchedulerAddress> {
        trusting(SchedulerAddress::from_file(self)?, tls_ca)
    }
}

impl ToScheduler for PathBuf {
    fn to_scheduler_trusting(self, tls_ca: Option<&Path>) -> Result<SchedulerAddress> {
        self.as_path().to_scheduler_trusting(tls_ca)
    }
}

impl ToScheduler for &str {
    fn to_scheduler_trusting(self, tls_ca: Option<&Path>) -> Result<SchedulerAddress> {
        from_str_target(self, tls_ca)
    }
}

impl ToScheduler for String {
    fn to_scheduler_trusting(self, tls_ca: Option<&Path>) -> Result<SchedulerAddress> {
        from_str_target(&self, tls_ca)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_file_round_trip() {
        let a = SchedulerAddress {
            addr: "127.0.0.1:8786".parse().unwrap(),
            cert_der: vec![0, 1, 0xfe, 0xff],
        };
        let dir = std::env::temp_dir().join(format!("wask-addr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("scheduler.json");
        a.write_file(&p).unwrap();
        assert_eq!(SchedulerAddress::from_file(&p).unwrap(), a);
        std::fs::write(
            &p,
            "{\"address\": \"127.0.0.1:1\", \"cert_der_hex\": \"zz\"}",
        )
        .unwrap();
        assert!(SchedulerAddress::from_file(&p).is_err());
        assert!(SchedulerAddress::from_file(dir.join("missing.json")).is_err());
    }

    #[test]
    fn strings_are_files_or_addresses() {
        for address in [
            "127.0.0.1:8786",
            "localhost:1",
            "[::1]:8786",
            "scheduler:8786",
        ] {
            assert!(is_host_port(address), "{address}");
        }
        for path in [
            "scheduler.json",
            "/tmp/a:b",
            "C:\\x",
            ":8786",
            "host:port",
            "a:99999",
        ] {
            assert!(!is_host_port(path), "{path}");
        }
    }
}
