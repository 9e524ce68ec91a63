//! Transport errors and QUIC application close codes.

use wask_proto::frame::FrameError;

/// Application error codes used when closing a connection or stopping a
/// stream.
pub mod codes {
    use quinn::VarInt;
    /// Orderly shutdown.
    pub const SHUTDOWN: VarInt = VarInt::from_u32(0);
    /// The peer broke the protocol (malformed, oversized or unexpected frame).
    pub const PROTOCOL: VarInt = VarInt::from_u32(1);
    /// The peer was refused (bad token or secret, wrong version).
    pub const REFUSED: VarInt = VarInt::from_u32(2);
    /// The peer did not say hello in time.
    pub const HELLO_TIMEOUT: VarInt = VarInt::from_u32(3);
    /// A payload exceeded its size limit.
    pub const TOO_LARGE: VarInt = VarInt::from_u32(4);
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The connection is gone.
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Opening the connection failed.
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// Writing to a stream failed.
    #[error("write failed: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading from a stream failed.
    #[error("read failed: {0}")]
    Read(#[from] quinn::ReadError),
    /// A stream ended or broke while reading a payload.
    #[error("read failed: {0}")]
    ReadToEnd(#[from] quinn::ReadToEndError),
    /// A frame was refused.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// A payload was larger than allowed.
    #[error("payload exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The stream was already finished or reset.
    #[error("stream closed")]
    ClosedStream(#[from] quinn::ClosedStream),
    /// Local I/O (binding a socket).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// TLS setup failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The peer did not follow the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A data stream of this many bytes (at most) was not sent or read
    /// within its deadline ([`crate::data::deadline`]).
    #[error("a data stream of up to {nbytes} bytes took longer than {secs} s")]
    TimedOut {
        /// The payload's size, or the limit of a read.
        nbytes: u64,
        /// The deadline.
        secs: u64,
    },
}

impl NetError {
    /// The close code a connection should get for this error.
    pub fn close_code(&self) -> quinn::VarInt {
        match self {
            NetError::Frame(_) | NetError::Protocol(_) | NetError::TimedOut { .. } => {
                codes::PROTOCOL
            }
            NetError::TooLarge { .. } => codes::TOO_LARGE,
            _ => codes::SHUTDOWN,
        }
    }
}
