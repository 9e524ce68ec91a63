//! Per-connection outgoing messages, in order, with consecutive batches
//! merged: many `Done`s or `Compute`s produced in one pass of the hub leave
//! as one message, and a `Free` never overtakes a `Compute` for the same key.

use wask_proto::KeyId;
use wask_proto::msg::{ClientEvent, ComputeTask, Done, StoreData, WorkerCommand};

/// A message that may absorb the next one.
pub(super) trait Merge: Sized {
    /// Absorbs `next` into `self`, or gives it back.
    fn merge(&mut self, next: Self) -> Option<Self>;

    /// Bytes of values it carries, which bound merging (see
    /// [`BATCH_BYTES`]).
    fn value_bytes(&self) -> usize {
        0
    }
}

/// Bytes of values merged into one message (scattered values in a `Store`
/// command), far below the frame limit.
const BATCH_BYTES: usize = 1 << 20;

/// Most items (tasks, keys, values) merged into one message: a pass of the
/// hub can produce millions (a thousand events of thousands of keys each),
/// and one message must stay far below the frame limit. 4096 finished
/// tasks with values of at most 1 KiB are about 4.2 MiB.
pub(super) const BATCH_ITEMS: usize = 4096;

/// Appends `b` to `a` if both fit in one message of [`BATCH_ITEMS`].
fn extend<T>(a: &mut Vec<T>, b: Vec<T>) -> Option<Vec<T>> {
    if a.len() + b.len() > BATCH_ITEMS {
        return Some(b);
    }
    a.extend(b);
    None
}

/// Appends `item` to the last message if `list` finds one of its kind
/// there with room (see [`BATCH_ITEMS`]), else a new message made by `wrap`.
fn append<M: Merge, T>(
    out: &mut Outbox<M>,
    item: T,
    list: impl FnOnce(&mut M) -> Option<&mut Vec<T>>,
    wrap: impl FnOnce(Vec<T>) -> M,
) {
    let rest = match out.msgs.last_mut().and_then(list) {
        Some(items) => join(items, item),
        None => Some(item),
    };
    if let Some(item) = rest {
        push(out, wrap(vec![item]));
    }
}

/// Appends `item` to `list` if it has room (see [`BATCH_ITEMS`]).
fn join<T>(list: &mut Vec<T>, item: T) -> Option<T> {
    if list.len() >= BATCH_ITEMS {
        return Some(item);
    }
    list.push(item);
    None
}

impl Merge for ClientEvent {
    fn merge(&mut self, next: Self) -> Option<Self> {
        match (self, next) {
            (ClientEvent::Done(a), ClientEvent::Done(b)) => extend(a, b).map(ClientEvent::Done),
            (ClientEvent::SendData(a), ClientEvent::SendData(b)) => {
                extend(a, b).map(ClientEvent::SendData)
            }
            (ClientEvent::DataNotNeeded(a), ClientEvent::DataNotNeeded(b)) => {
                extend(a, b).map(ClientEvent::DataNotNeeded)
            }
            (_, next) => Some(next),
        }
    }
}

impl Merge for WorkerCommand {
    fn merge(&mut self, next: Self) -> Option<Self> {
        match (self, next) {
            (WorkerCommand::Compute(a), WorkerCommand::Compute(b)) => {
                extend(a, b).map(WorkerCommand::Compute)
            }
            (WorkerCommand::Free(a), WorkerCommand::Free(b)) => {
                extend(a, b).map(WorkerCommand::Free)
            }
            (WorkerCommand::Store(a), WorkerCommand::Store(b)) => {
                extend(a, b).map(WorkerCommand::Store)
            }
            (_, next) => Some(next),
        }
    }

    fn value_bytes(&self) -> usize {
        match self {
            WorkerCommand::Store(list) => list.iter().map(|d| d.value.len()).sum(),
            _ => 0,
        }
    }
}

/// One connection's messages waiting for the flush, in order.
#[derive(Debug)]
pub(super) struct Outbox<M> {
    msgs: Vec<M>,
    /// Bytes of values in the last message, kept as messages merge into it
    /// so that a long batch is not summed again on every merge.
    last_bytes: usize,
}

impl<M> Default for Outbox<M> {
    fn default() -> Self {
        Outbox {
            msgs: Vec::new(),
            last_bytes: 0,
        }
    }
}

impl<M> std::ops::Deref for Outbox<M> {
    type Target = [M];
    fn deref(&self) -> &[M] {
        &self.msgs
    }
}

impl<M> Outbox<M> {
    /// Takes every message out, in order.
    pub(super) fn drain(&mut self) -> std::vec::Drain<'_, M> {
        self.last_bytes = 0;
        self.msgs.drain(..)
    }
}

/// Most finished keys a client's outbox holds back (see
/// [`Outbox::holdable`]): one full message.
const HOLD_KEYS: usize = BATCH_ITEMS;

impl Outbox<ClientEvent> {
    /// One more finished task: it joins a trailing `Done`, or starts one.
    pub(super) fn done(&mut self, done: Done) {
        append(
            self,
            done,
            |m| match m {
                ClientEvent::Done(list) => Some(list),
                _ => None,
            },
            ClientEvent::Done,
        );
    }

    /// Whether what waits may wait a moment longer for more to join it:
    /// only finished tasks (an error, a value asked for or any other
    /// answer leaves at once), and fewer than [`HOLD_KEYS`].
    pub(super) fn holdable(&self) -> bool {
        matches!(&self.msgs[..], [ClientEvent::Done(list)] if list.len() < HOLD_KEYS)
    }

    /// Asks for one more upload: the key joins a trailing `SendData`, or
    /// starts one.
    pub(super) fn send_data(&mut self, key: KeyId) {
        append(
            self,
            key,
            |m| match m {
                ClientEvent::SendData(list) => Some(list),
                _ => None,
            },
            ClientEvent::SendData,
        );
    }

    /// Answers one more scatter with a drop: the key joins a trailing
    /// `DataNotNeeded`, or starts one.
    pub(super) fn data_not_needed(&mut self, key: KeyId) {
        append(
            self,
            key,
            |m| match m {
                ClientEvent::DataNotNeeded(list) => Some(list),
                _ => None,
            },
            ClientEvent::DataNotNeeded,
        );
    }
}

impl Outbox<WorkerCommand> {
    /// One more task to run: it joins a trailing `Compute`, or starts one.
    pub(super) fn compute(&mut self, task: ComputeTask) {
        append(
            self,
            task,
            |m| match m {
                WorkerCommand::Compute(list) => Some(list),
                _ => None,
            },
            WorkerCommand::Compute,
        );
    }

    /// One more value to store: it joins a trailing `Store` within the
    /// batch budget, or starts one.
    pub(super) fn store(&mut self, data: StoreData) {
        let n = data.value.len();
        match self.msgs.last_mut() {
            Some(WorkerCommand::Store(list))
                if self.last_bytes + n <= BATCH_BYTES && list.len() < BATCH_ITEMS =>
            {
                list.push(data);
                self.last_bytes += n;
            }
            _ => push(self, WorkerCommand::Store(vec![data])),
        }
    }
}

/// Appends `msg`, merging it into the last message when possible (and
/// the values of both fit in [`BATCH_BYTES`]).
pub(super) fn push<M: Merge>(out: &mut Outbox<M>, msg: M) {
    let bytes = msg.value_bytes();
    let rest = match out.msgs.last_mut() {
        Some(last) if out.last_bytes + bytes <= BATCH_BYTES => last.merge(msg),
        _ => Some(msg),
    };
    match rest {
        None => out.last_bytes += bytes,
        Some(m) => {
            out.msgs.push(m);
            out.last_bytes = bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use wask_proto::KeyId;

    #[test]
    fn merges_runs_and_keeps_order() {
        let mut out = Outbox::default();
        push(&mut out, WorkerCommand::Free(vec![(0, KeyId([1; 16]))]));
        push(&mut out, WorkerCommand::Compute(vec![]));
        push(&mut out, WorkerCommand::Compute(vec![]));
        push(&mut out, WorkerCommand::Free(vec![(0, KeyId([2; 16]))]));
        push(&mut out, WorkerCommand::Free(vec![(0, KeyId([3; 16]))]));
        assert_eq!(out.len(), 3);
        assert!(matches!(&out[2], WorkerCommand::Free(v) if v.len() == 2));
    }

    #[test]
    fn stores_merge_up_to_a_budget() {
        use wask_proto::msg::StoreData;
        let store = |n: usize| {
            WorkerCommand::Store(vec![StoreData {
                tenant: 0,
                key: KeyId([n as u8; 16]),
                value: vec![0u8; 600 << 10].into(),
            }])
        };
        let mut out = Outbox::default();
        for n in 0..3 {
            push(&mut out, store(n));
        }
        // 600 KiB + 600 KiB passes 1 MiB: no two in one frame.
        assert_eq!(out.len(), 3);
        let mut out = Outbox::default();
        push(&mut out, ClientEvent::SendData(vec![KeyId([1; 16])]));
        push(&mut out, ClientEvent::SendData(vec![KeyId([2; 16])]));
        push(&mut out, ClientEvent::DataNotNeeded(vec![KeyId([3; 16])]));
        assert_eq!(out.len(), 2);
    }

    fn done(n: u8) -> Done {
        Done {
            key: KeyId([n; 16]),
            nbytes: 1,
            value: None,
        }
    }

    #[test]
    fn only_a_batch_of_done_tasks_may_wait() {
        let mut out = Outbox::default();
        assert!(!out.holdable(), "nothing to hold");
        out.done(done(1));
        out.done(done(2));
        assert!(out.holdable());
        assert!(matches!(&out[..], [ClientEvent::Done(list)] if list.len() == 2));
        // Anything else leaves at once, with what was held.
        push(
            &mut out,
            ClientEvent::Value {
                key: KeyId([3; 16]),
                value: Bytes::from_static(b"v"),
            },
        );
        assert!(!out.holdable());
        out.drain();
        for n in 0..HOLD_KEYS {
            assert!(out.holdable() || n == 0);
            out.done(done(n as u8));
        }
        assert!(!out.holdable(), "a full batch leaves");
    }

    #[test]
    fn no_message_grows_past_the_item_limit() {
        let key = |n: usize| (0, KeyId([n as u8; 16]));
        let mut out = Outbox::default();
        let half = BATCH_ITEMS / 2 + 1;
        for _ in 0..3 {
            push(&mut out, WorkerCommand::Free((0..half).map(key).collect()));
        }
        for n in 0..BATCH_ITEMS + 1 {
            out.store(StoreData {
                tenant: 0,
                key: KeyId([n as u8; 16]),
                value: Bytes::new(),
            });
        }
        let sizes: Vec<usize> = out
            .iter()
            .map(|m| match m {
                WorkerCommand::Free(list) => list.len(),
                WorkerCommand::Store(list) => list.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, [half, half, half, BATCH_ITEMS, 1]);
        let mut out = Outbox::default();
        for n in 0..2 * BATCH_ITEMS + 1 {
            out.done(done(n as u8));
        }
        assert!(
            matches!(&out[..], [ClientEvent::Done(a), ClientEvent::Done(b), ClientEvent::Done(c)]
            if a.len() == BATCH_ITEMS && b.len() == BATCH_ITEMS && c.len() == 1)
        );
        let mut out = Outbox::default();
        for _ in 0..BATCH_ITEMS + 1 {
            out.send_data(KeyId([0; 16]));
        }
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn single_tasks_join_the_trailing_compute() {
        let task = |n: u8| ComputeTask {
            tenant: 0,
            key: KeyId([n; 16]),
            module: 0,
            func: 0,
            args: Default::default(),
            deps: vec![],
            limits: Default::default(),
        };
        let mut out = Outbox::default();
        out.compute(task(1));
        out.compute(task(2));
        push(&mut out, WorkerCommand::Free(vec![(0, KeyId([1; 16]))]));
        out.compute(task(3));
        assert!(matches!(&out[..], [
            WorkerCommand::Compute(a),
            WorkerCommand::Free(_),
            WorkerCommand::Compute(b)
        ] if a.len() == 2 && b.len() == 1));
    }

    #[test]
    fn single_keys_and_values_join_the_trailing_batch() {
        let mut out = Outbox::default();
        out.send_data(KeyId([1; 16]));
        out.send_data(KeyId([2; 16]));
        out.data_not_needed(KeyId([3; 16]));
        out.data_not_needed(KeyId([4; 16]));
        out.send_data(KeyId([5; 16]));
        assert!(matches!(&out[..], [
            ClientEvent::SendData(a),
            ClientEvent::DataNotNeeded(b),
            ClientEvent::SendData(c)
        ] if a.len() == 2 && b.len() == 2 && c.len() == 1));
        // Values: up to the budget per `Store`, counted as they join.
        let value = |n: u8| StoreData {
            tenant: 0,
            key: KeyId([n; 16]),
            value: vec![0u8; 300 << 10].into(),
        };
        let mut out = Outbox::default();
        for n in 0..7 {
            out.store(value(n));
        }
        push(&mut out, WorkerCommand::Store(vec![value(7)]));
        let sizes: Vec<usize> = out
            .iter()
            .map(|m| match m {
                WorkerCommand::Store(list) => list.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, [3, 3, 2]);
        assert_eq!(out.drain().count(), 3);
        assert!(out.is_empty());
        out.store(value(8));
        assert_eq!(out.len(), 1);
    }
}
