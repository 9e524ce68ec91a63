//! The cluster secret on disk: read it, or make one and write it with
//! owner-only permissions.

use std::io::Write;
use std::path::Path;

/// Reads the secret in `path` (surrounding whitespace trimmed).
pub fn read(path: &Path) -> std::io::Result<String> {
    let s = std::fs::read_to_string(path)?;
    let s = s.trim().to_string();
    if s.len() < 16 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "cluster secret is shorter than 16 characters",
        ));
    }
    Ok(s)
}

/// A fresh random secret (256 bits, hex).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    // Two v4 UUIDs: 244 random bits from the OS generator.
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    wask_proto::scheduler_file::to_hex(&bytes)
}

/// Writes `secret` to `path`, readable by its owner only.
pub fn write(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")
}
