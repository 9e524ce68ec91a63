//! What goes into the core ([`Event`]) and what comes out ([`Action`]).
//!
//! The QUIC shell decodes frames into events and carries out actions; the
//! core never sees a connection. Ids that name no known client, worker, key
//! or request are ignored or answered with an error action, never trusted.

use bytes::Bytes;
use std::sync::Arc;
use wask_proto::msg::{ComputeTask, Done, Failed, Finished, ScatterSpec, Stored, TaskSpec};
use wask_proto::{ClientId, KeyId, ModuleId, TaskError, TenantId, WorkerId};

/// Something that happened outside the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A client said hello and was admitted as `tenant`.
    ClientConnected {
        /// The connection's id.
        client: ClientId,
        /// Its tenant.
        tenant: TenantId,
    },
    /// A client went away; everything it held is released.
    ClientDisconnected {
        /// The connection's id.
        client: ClientId,
    },
    /// A module can be used by `tenant`. Module ids are scheduler-wide and
    /// assigned by the shell; registering an id again replaces it.
    ModuleRegistered {
        /// Its id.
        module: ModuleId,
        /// The tenant that registered it.
        tenant: TenantId,
        /// Its task names, by `func` index.
        task_names: Arc<[String]>,
    },
    /// A client submitted tasks (in order: a task may depend on an earlier
    /// one of the same batch).
    Submit {
        /// The client.
        client: ClientId,
        /// The tasks.
        tasks: Vec<TaskSpec>,
    },
    /// A client scattered data: it holds a future of each key and keeps
    /// the bytes until told [`Action::RequestData`] or
    /// [`Action::DataNotNeeded`].
    Scatter {
        /// The client.
        client: ClientId,
        /// The keys and sizes, in order.
        data: Vec<ScatterSpec>,
    },
    /// The bytes of scattered data arrived from a client. The shell has
    /// checked that they hash to `key` and that the client was asked.
    DataReceived {
        /// The client.
        client: ClientId,
        /// A key of its tenant.
        key: KeyId,
        /// The bytes; passed on to a worker, never kept.
        value: Bytes,
    },
    /// A client holds futures of these keys again.
    Hold {
        /// The client.
        client: ClientId,
        /// Keys of its tenant.
        keys: Vec<KeyId>,
    },
    /// A client wants the values of these keys.
    Want {
        /// The client.
        client: ClientId,
        /// Keys of its tenant.
        keys: Vec<KeyId>,
    },
    /// A client dropped its last future of these keys.
    Release {
        /// The client.
        client: ClientId,
        /// Keys of its tenant.
        keys: Vec<KeyId>,
    },
    /// A client cancels these keys (and what depends on them).
    Cancel {
        /// The client.
        client: ClientId,
        /// Keys of its tenant.
        keys: Vec<KeyId>,
    },
    /// A worker said hello and was admitted.
    WorkerJoined {
        /// Its id.
        worker: WorkerId,
        /// A name for `info`.
        name: String,
        /// Its address for peers.
        address: String,
        /// Threads that run wasm.
        nthreads: u32,
        /// Bytes of results it is willing to hold.
        memory_limit: u64,
    },
    /// A worker went away (goodbye or lost connection).
    WorkerLeft {
        /// Its id.
        worker: WorkerId,
    },
    /// A worker finished tasks and holds their results.
    Finished {
        /// The worker.
        worker: WorkerId,
        /// The tasks.
        tasks: Vec<Finished>,
    },
    /// A worker's tasks failed.
    Failed {
        /// The worker.
        worker: WorkerId,
        /// The tasks.
        tasks: Vec<Failed>,
    },
    /// A worker reports scattered data it was given with
    /// [`Action::StoreData`].
    Stored {
        /// The worker.
        worker: WorkerId,
        /// What it holds or refused.
        reports: Vec<Stored>,
    },
    /// A worker answered [`Action::FetchValue`].
    Value {
        /// The worker.
        worker: WorkerId,
        /// The request answered.
        req: u64,
        /// The value; `None` if the worker no longer holds it.
        value: Option<Bytes>,
    },
}

/// Something the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a task to a worker.
    Compute {
        /// The worker.
        worker: WorkerId,
        /// The task.
        task: ComputeTask,
    },
    /// Tell a worker to drop a result.
    Free {
        /// The worker.
        worker: WorkerId,
        /// Owner of the key.
        tenant: TenantId,
        /// The key.
        key: KeyId,
    },
    /// Ask a worker for a value; it answers with [`Event::Value`].
    FetchValue {
        /// The worker.
        worker: WorkerId,
        /// Correlates the answer.
        req: u64,
        /// Owner of the key.
        tenant: TenantId,
        /// The key.
        key: KeyId,
    },
    /// Tell a client a key is in memory.
    ClientDone {
        /// The client.
        client: ClientId,
        /// The key, its size and possibly its value.
        done: Done,
    },
    /// Tell a client a key failed (or was refused, cancelled or lost).
    ClientErred {
        /// The client.
        client: ClientId,
        /// The key.
        key: KeyId,
        /// Why.
        error: TaskError,
    },
    /// Ask a client to upload the bytes of scattered data; it answers with
    /// [`Event::DataReceived`].
    RequestData {
        /// The client.
        client: ClientId,
        /// The key.
        key: KeyId,
        /// Its announced size: the upload must have exactly this many bytes.
        nbytes: u64,
    },
    /// Tell a client to drop the bytes of scattered data without uploading
    /// them.
    DataNotNeeded {
        /// The client.
        client: ClientId,
        /// The key.
        key: KeyId,
    },
    /// Give scattered data to a worker to hold; it answers with
    /// [`Event::Stored`].
    StoreData {
        /// The worker.
        worker: WorkerId,
        /// Owner of the key.
        tenant: TenantId,
        /// The key.
        key: KeyId,
        /// The bytes.
        value: Bytes,
    },
    /// Send a client a value it wanted.
    ClientValue {
        /// The client.
        client: ClientId,
        /// The key.
        key: KeyId,
        /// The postcard bytes of the result.
        value: Bytes,
    },
}
