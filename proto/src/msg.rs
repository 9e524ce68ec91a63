//! The messages of each connection kind.
//!
//! Every connection has one long-lived bidirectional *control* stream that
//! carries length-prefixed postcard frames, one message each, many per
//! write. Large payloads (modules, big values) go on unidirectional streams
//! of their own, opened with a [`StreamHeader`] frame, so they never hold up
//! control traffic.
//!
//! Scattered data goes client → scheduler → worker: the client announces
//! keys and sizes ([`ClientRequest::Scatter`]), uploads only what the
//! scheduler asks for ([`ClientEvent::SendData`]), and the scheduler passes
//! the bytes on to one worker ([`WorkerCommand::Store`] or a
//! [`StreamHeader::DataForWorker`] stream) without keeping them.
//!
//! | connection | opener sends | opener receives |
//! |---|---|---|
//! | client → scheduler | [`ClientRequest`] | [`ClientEvent`] |
//! | worker → scheduler | [`WorkerRequest`] | [`WorkerCommand`] |
//! | worker → worker | [`PeerRequest`] | [`PeerReply`] |

use crate::limits::{ResolvedLimits, TaskLimits};
use crate::signature::TaskSignature;
use crate::{ArgTemplate, ClientId, KeyId, ModuleHash, ModuleId, TaskError, TenantId, WorkerId};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One call as a client submits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The key the result will have.
    pub key: KeyId,
    /// Whether `key` is a pure (hash) key or a random one.
    pub pure: bool,
    /// The module, as registered by this tenant.
    pub module: ModuleId,
    /// Index of the task in the module's signature list.
    pub func: u32,
    /// The postcard arguments, with holes for dependency results.
    pub args: ArgTemplate,
    /// Keys whose results the arguments need, without repeats.
    pub deps: Vec<KeyId>,
    /// Requested limits; the scheduler caps them.
    pub limits: TaskLimits,
}

/// Client → scheduler, on the control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// First message: protocol version and tenant token.
    Hello {
        /// Must equal [`crate::PROTOCOL_VERSION`].
        protocol: u32,
        /// The tenant's token, if the cluster has tenants.
        token: Option<String>,
    },
    /// Register a module by hash. The scheduler answers
    /// [`ClientEvent::ModuleReady`] if it has the bytes, else
    /// [`ClientEvent::ModuleNeeded`], after which the client uploads the
    /// bytes on a stream headed [`StreamHeader::Module`].
    Module {
        /// Correlates the answer.
        req: u32,
        /// blake3 of the wasm bytes.
        hash: ModuleHash,
    },
    /// New tasks. The client holds a future for each.
    Submit(Vec<TaskSpec>),
    /// Keys the client holds futures for again (after a release, or for a
    /// key another client created).
    Hold(Vec<KeyId>),
    /// Send the values of these keys when they are (or once they become)
    /// available.
    Want(Vec<KeyId>),
    /// The client dropped its last future for these keys.
    Release(Vec<KeyId>),
    /// Cancel these keys and what depends on them, if no other client wants
    /// them.
    Cancel(Vec<KeyId>),
    /// Ask for a snapshot of the cluster.
    Info {
        /// Correlates the answer.
        req: u32,
    },
    /// Scattered data: the client holds a future of each key and keeps the
    /// bytes until the scheduler answers [`ClientEvent::SendData`] (upload
    /// them) or [`ClientEvent::DataNotNeeded`] (the tenant has them, or the
    /// key was refused). Nothing is uploaded before that answer.
    Scatter(Vec<ScatterSpec>),
    /// Scattered values of at most [`crate::limits::INLINE_VALUE_MAX`] bytes
    /// each, asked for with [`ClientEvent::SendData`]. Larger ones go on a
    /// stream headed [`StreamHeader::Scatter`].
    Data(Vec<DataValue>),
}

/// One scattered value, announced before its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScatterSpec {
    /// [`crate::key::data_key_id`] of the bytes; the scheduler checks it.
    pub key: KeyId,
    /// Size of the postcard bytes, at most [`crate::limits::MAX_PAYLOAD`].
    pub nbytes: u64,
}

/// The bytes of a scattered value, inline in a control frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataValue {
    /// The key the bytes hash to.
    pub key: KeyId,
    /// The postcard bytes.
    pub value: Bytes,
}

/// A task that finished, as a client learns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The key.
    pub key: KeyId,
    /// Size of the encoded result.
    pub nbytes: u64,
    /// The value, when it is small or the client asked for it.
    pub value: Option<Bytes>,
}

/// Scheduler → client, on the control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientEvent {
    /// Answer to a good hello.
    Welcome {
        /// This connection's id.
        client: ClientId,
    },
    /// The hello was refused (bad token, wrong protocol); the connection
    /// closes after this.
    Refused {
        /// Why.
        reason: String,
    },
    /// The module is registered and can be used.
    ModuleReady {
        /// The request this answers.
        req: u32,
        /// Its id for [`TaskSpec::module`].
        module: ModuleId,
    },
    /// Upload the module's bytes.
    ModuleNeeded {
        /// The request this answers.
        req: u32,
    },
    /// The module was refused.
    ModuleRefused {
        /// The request this answers.
        req: u32,
        /// Why.
        reason: String,
    },
    /// Tasks finished.
    Done(Vec<Done>),
    /// A task failed (or was cancelled, or refused at submission).
    Erred {
        /// The key.
        key: KeyId,
        /// Why.
        error: TaskError,
    },
    /// A value asked for with [`ClientRequest::Want`] that was already done.
    Value {
        /// The key.
        key: KeyId,
        /// The postcard bytes of the result.
        value: Bytes,
    },
    /// Answer to [`ClientRequest::Info`].
    Info {
        /// The request this answers.
        req: u32,
        /// The snapshot.
        info: ClusterInfo,
    },
    /// Upload the bytes of these scattered keys (inline with
    /// [`ClientRequest::Data`] when small, else on a
    /// [`StreamHeader::Scatter`] stream), then forget them.
    SendData(Vec<KeyId>),
    /// Forget the bytes of these scattered keys without uploading them.
    DataNotNeeded(Vec<KeyId>),
}

/// What `wask info` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// The workers.
    pub workers: Vec<WorkerInfo>,
    /// Tasks the scheduler knows for the asking tenant.
    pub tasks: u64,
    /// Module uploads the scheduler has received from the asking tenant's
    /// clients. Loading a module the scheduler already has (from any
    /// client of the tenant) uploads nothing, so this does not grow.
    pub module_uploads: u64,
    /// Scattered values the scheduler has received from the asking
    /// tenant's clients and passed on to a worker. Scattering data the
    /// tenant already holds uploads nothing, so this does not grow.
    pub data_uploads: u64,
}

/// One worker in [`ClusterInfo`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Worker id.
    pub id: WorkerId,
    /// Its name.
    pub name: String,
    /// Its address for peers.
    pub address: String,
    /// Threads running wasm.
    pub nthreads: u32,
    /// Bytes of results it holds.
    pub held_bytes: u64,
    /// Results it holds.
    pub held_keys: u64,
    /// Tasks assigned to it and not finished.
    pub processing: u64,
    /// Tasks it has run since it joined.
    pub executed: u64,
}

/// Worker → scheduler, on the control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerRequest {
    /// First message.
    Hello {
        /// Must equal [`crate::PROTOCOL_VERSION`].
        protocol: u32,
        /// The cluster secret.
        secret: String,
        /// A name for logs and `wask info`.
        name: String,
        /// Threads that run wasm.
        nthreads: u32,
        /// Bytes of results it is willing to hold.
        memory_limit: u64,
        /// Address other workers reach it at.
        peer_address: String,
        /// Its self-signed certificate (DER), which peers pin.
        peer_cert: Bytes,
    },
    /// Tasks finished and their results are held.
    Finished(Vec<Finished>),
    /// Tasks failed.
    Failed(Vec<Failed>),
    /// Answer to [`WorkerCommand::SendValue`]; `None` if the key is not held.
    Value {
        /// The request this answers.
        req: u64,
        /// The bytes.
        value: Option<Bytes>,
    },
    /// The worker needs a module's bytes.
    NeedModule {
        /// The module.
        module: ModuleId,
    },
    /// The worker is leaving; the scheduler reassigns its work.
    Goodbye,
    /// Scattered values sent with [`WorkerCommand::Store`] or on a
    /// [`StreamHeader::DataForWorker`] stream are held (or were refused).
    Stored(Vec<Stored>),
}

/// Scattered data a worker was given, as it reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// Owner of the key.
    pub tenant: TenantId,
    /// The key.
    pub key: KeyId,
    /// The size now held, or why the worker would not hold it (its memory
    /// limit).
    pub result: Result<u64, TaskError>,
}

/// A finished task, as the worker reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// Owner of the key.
    pub tenant: TenantId,
    /// The key.
    pub key: KeyId,
    /// Size of the result.
    pub nbytes: u64,
    /// The result itself when it is at most [`crate::limits::PUSH_VALUE_MAX`].
    pub value: Option<Bytes>,
    /// Time spent in the sandbox, in microseconds.
    pub duration_us: u64,
}

/// A failed task, as the worker reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    /// Owner of the key.
    pub tenant: TenantId,
    /// The key.
    pub key: KeyId,
    /// Why.
    pub error: TaskError,
}

/// Where a dependency's result can be fetched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepLocation {
    /// The key.
    pub key: KeyId,
    /// Workers holding it.
    pub who_has: Vec<WorkerId>,
}

/// A task for a worker to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeTask {
    /// Owner.
    pub tenant: TenantId,
    /// The key of the result.
    pub key: KeyId,
    /// The module (scheduler-wide id).
    pub module: ModuleId,
    /// Index of the task in the module's signature list.
    pub func: u32,
    /// The arguments with holes.
    pub args: ArgTemplate,
    /// Dependencies, in the order the holes refer to them.
    pub deps: Vec<DepLocation>,
    /// The limits to enforce.
    pub limits: ResolvedLimits,
}

/// How to reach another worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Its id.
    pub worker: WorkerId,
    /// Its address.
    pub address: String,
    /// Its certificate (DER).
    pub cert: Bytes,
}

/// Scheduler → worker, on the control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerCommand {
    /// Answer to a good hello.
    Welcome {
        /// This worker's id.
        worker: WorkerId,
    },
    /// The hello was refused; the connection closes after this.
    Refused {
        /// Why.
        reason: String,
    },
    /// Workers that joined (or all workers, right after the welcome).
    Peers(Vec<PeerInfo>),
    /// A worker left.
    PeerLeft(WorkerId),
    /// Run these tasks.
    Compute(Vec<ComputeTask>),
    /// Forget these results.
    Free(Vec<(TenantId, KeyId)>),
    /// Send this value to the scheduler (for a client).
    SendValue {
        /// Correlates the answer.
        req: u64,
        /// Owner.
        tenant: TenantId,
        /// The key.
        key: KeyId,
    },
    /// Compiling the module is not possible: drop tasks waiting for it.
    ModuleUnavailable {
        /// The module.
        module: ModuleId,
    },
    /// Hold these scattered values (each at most
    /// [`crate::limits::INLINE_VALUE_MAX`] bytes) as results, and answer
    /// [`WorkerRequest::Stored`].
    Store(Vec<StoreData>),
}

/// A scattered value for a worker to hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreData {
    /// Owner of the key.
    pub tenant: TenantId,
    /// The key.
    pub key: KeyId,
    /// The postcard bytes.
    pub value: Bytes,
}

/// Worker → worker, one bidirectional stream per request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// First request on a connection: prove membership of the cluster.
    Hello {
        /// Must equal [`crate::PROTOCOL_VERSION`].
        protocol: u32,
        /// The cluster secret.
        secret: String,
    },
    /// Send the values of these keys.
    Get {
        /// Owner.
        tenant: TenantId,
        /// The keys.
        keys: Vec<KeyId>,
    },
}

/// Answer to a [`PeerRequest`]. For `Get`, the raw bytes of every present
/// value follow the frame, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerReply {
    /// Hello accepted.
    Welcome,
    /// Hello refused.
    Refused,
    /// Sizes of the values requested; `None` where the key is not held.
    Values(Vec<Option<u64>>),
}

/// First frame of a unidirectional data stream; the payload follows as raw
/// bytes up to the end of the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamHeader {
    /// Client → scheduler: the bytes of a module registered as needed.
    Module {
        /// Its hash; the scheduler checks it.
        hash: ModuleHash,
    },
    /// Scheduler → worker: a module's bytes.
    ModuleForWorker {
        /// Scheduler-wide module id.
        module: ModuleId,
        /// Its hash; the worker checks it.
        hash: ModuleHash,
    },
    /// Scheduler → client: a value too large for the control stream.
    Value {
        /// The key.
        key: KeyId,
    },
    /// Worker → scheduler: a value too large for the control stream,
    /// answering [`WorkerCommand::SendValue`].
    WorkerValue {
        /// The request.
        req: u64,
    },
    /// Client → scheduler: the bytes of scattered data, asked for with
    /// [`ClientEvent::SendData`]; exactly as many bytes as the
    /// [`ScatterSpec`] announced, hashing to the key.
    Scatter {
        /// The key.
        key: KeyId,
    },
    /// Scheduler → worker: scattered data to hold, like
    /// [`WorkerCommand::Store`] for values too large for a control frame.
    DataForWorker {
        /// Owner of the key.
        tenant: TenantId,
        /// The key.
        key: KeyId,
    },
}

/// A module's task list, as the scheduler knows it (used in tests and by
/// `wask info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleTasks {
    /// The module.
    pub hash: ModuleHash,
    /// Its tasks.
    pub tasks: Vec<TaskSignature>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameDecoder, encode};

    /// The scatter messages survive the frame codec, errors included.
    #[test]
    fn scatter_messages_round_trip() {
        let key = crate::key::data_key_id(b"bytes");
        let mut bytes = Vec::new();
        let client = [
            ClientRequest::Scatter(vec![ScatterSpec { key, nbytes: 5 }]),
            ClientRequest::Data(vec![DataValue {
                key,
                value: Bytes::from_static(b"bytes"),
            }]),
        ];
        let worker = [
            WorkerRequest::Stored(vec![
                Stored {
                    tenant: 3,
                    key,
                    result: Ok(5),
                },
                Stored {
                    tenant: 3,
                    key,
                    result: Err(TaskError::WorkerFull {
                        message: "full".into(),
                    }),
                },
            ]),
            WorkerRequest::Goodbye,
        ];
        for m in &client {
            encode(m, &mut bytes);
        }
        let mut d = FrameDecoder::new(1 << 20);
        d.push(&bytes);
        for m in &client {
            assert_eq!(d.next_message::<ClientRequest>().unwrap().as_ref(), Some(m));
        }
        let mut bytes = Vec::new();
        for m in &worker {
            encode(m, &mut bytes);
        }
        d.push(&bytes);
        for m in &worker {
            assert_eq!(d.next_message::<WorkerRequest>().unwrap().as_ref(), Some(m));
        }
        let header = StreamHeader::DataForWorker { tenant: 1, key };
        let framed = crate::frame::encode_to_vec(&header);
        assert_eq!(
            crate::frame::decode_body::<StreamHeader>(&framed[crate::frame::PREFIX..]).unwrap(),
            header
        );
    }
}
