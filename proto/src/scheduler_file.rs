//! The scheduler file: where a scheduler listens and the certificate to pin,
//! written as JSON by `wask-scheduler --scheduler-file F` and read by
//! clients, workers and the CLI (as `dask scheduler --scheduler-file` does).
//! It holds no secret: workers take the cluster secret from elsewhere.

use serde::{Deserialize, Serialize};

/// The JSON of a scheduler file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerFile {
    /// `host:port` to connect to.
    pub address: String,
    /// The scheduler's certificate, DER bytes in lower-case hex.
    pub cert_der_hex: String,
}

impl SchedulerFile {
    /// A file for `address` and the DER certificate.
    pub fn new(address: String, cert_der: &[u8]) -> SchedulerFile {
        SchedulerFile {
            address,
            cert_der_hex: to_hex(cert_der),
        }
    }

    /// The certificate's DER bytes, if the hex is valid.
    pub fn cert_der(&self) -> Option<Vec<u8>> {
        from_hex(&self.cert_der_hex)
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Bytes of a hex string, if it is one.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let f = SchedulerFile::new("127.0.0.1:8786".into(), &[0, 1, 0xab, 0xff]);
        assert_eq!(f.cert_der_hex, "0001abff");
        assert_eq!(f.cert_der().unwrap(), vec![0, 1, 0xab, 0xff]);
        assert!(from_hex("zz").is_none());
        assert!(from_hex("abc").is_none());
    }
}
