//! Where a scheduler is: an address and the certificate to pin, given
//! directly or read from a scheduler file (JSON written by
//! `wask-scheduler --scheduler-file`).

use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A scheduler's address and certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerAddress {
    /// UDP address of the scheduler.
    pub addr: SocketAddr,
    /// Its DER certificate, pinned by the client.
    pub cert_der: Vec<u8>,
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
/// [`SchedulerAddress`], or the path of a scheduler file.
pub trait ToScheduler {
    /// Resolves to an address and certificate.
    fn to_scheduler(self) -> Result<SchedulerAddress>;
}

impl ToScheduler for SchedulerAddress {
    fn to_scheduler(self) -> Result<SchedulerAddress> {
        Ok(self)
    }
}

impl ToScheduler for &SchedulerAddress {
    fn to_scheduler(self) -> Result<SchedulerAddress> {
        Ok(self.clone())
    }
}

impl ToScheduler for &Path {
    fn to_scheduler(self) -> Result<SchedulerAddress> {
        SchedulerAddress::from_file(self)
    }
}

impl ToScheduler for PathBuf {
    fn to_scheduler(self) -> Result<SchedulerAddress> {
        SchedulerAddress::from_file(self)
    }
}

impl ToScheduler for &str {
    fn to_scheduler(self) -> Result<SchedulerAddress> {
        SchedulerAddress::from_file(self)
    }
}

impl ToScheduler for String {
    fn to_scheduler(self) -> Result<SchedulerAddress> {
        SchedulerAddress::from_file(self)
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
}
