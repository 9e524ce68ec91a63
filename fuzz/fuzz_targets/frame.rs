//! Everything a peer can put on the wire, decoded from arbitrary bytes.
//!
//! The input is fed to a [`FrameDecoder`] in pieces of pseudo-random sizes
//! (as QUIC delivers it) and decoded as every message type of every
//! connection kind; it is also read as a task-signature section and as a
//! wasm module. Nothing may panic, hang or allocate without bound, and every
//! message that decodes must survive an encode/decode round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use wask_proto::frame::{self, FrameDecoder};
use wask_proto::module::{self, ModulePolicy};
use wask_proto::msg::{
    ClientEvent, ClientRequest, PeerReply, PeerRequest, StreamHeader, WorkerCommand, WorkerRequest,
};
use wask_proto::signature;

/// A frame limit small enough that the fuzzer can reach it.
const LIMIT: usize = 64 << 10;

/// Piece sizes from the input's first bytes (xorshift), so the fuzzer
/// controls the splits too.
fn pieces(data: &[u8]) -> Vec<&[u8]> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for b in data.iter().take(8) {
        seed = (seed << 8 | *b as u64) ^ (seed >> 56);
    }
    seed |= 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = 1 + (seed % 64) as usize;
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        out.push(piece);
        rest = tail;
    }
    out
}

/// Decodes `T`s from the stream as a connection would: stop at the first
/// error (the connection is closed), check the end of the stream otherwise.
fn decode_stream<T>(pieces: &[&[u8]])
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let mut decoder = FrameDecoder::new(LIMIT);
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_message::<T>() {
                Ok(Some(msg)) => round_trip(&msg),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.finish();
}

fn round_trip<T>(msg: &T)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let bytes = frame::encode_to_vec(msg);
    let again: T =
        frame::decode_body(&bytes[frame::PREFIX..]).expect("re-decoding an encoded message");
    assert_eq!(&again, msg, "round trip changed the message");
}

fuzz_target!(|data: &[u8]| {
    let pieces = pieces(data);
    decode_stream::<ClientRequest>(&pieces);
    decode_stream::<ClientEvent>(&pieces);
    decode_stream::<WorkerRequest>(&pieces);
    decode_stream::<WorkerCommand>(&pieces);
    decode_stream::<PeerRequest>(&pieces);
    decode_stream::<PeerReply>(&pieces);
    decode_stream::<StreamHeader>(&pieces);

    let _ = signature::parse_section(data, wask_proto::limits::MAX_TASKS_PER_MODULE);
    let _ = module::inspect(data, &ModulePolicy::default());
});
