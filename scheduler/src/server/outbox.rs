//! Per-connection outgoing messages, in order, with consecutive batches
//! merged: many `Done`s or `Compute`s produced in one pass of the hub leave
//! as one message, and a `Free` never overtakes a `Compute` for the same key.

use wask_proto::msg::{ClientEvent, WorkerCommand};

/// A message that may absorb the next one.
pub(super) trait Merge: Sized {
    /// Absorbs `next` into `self`, or gives it back.
    fn merge(&mut self, next: Self) -> Option<Self>;
}

/// Bytes of scattered values merged into one `Store` command, far below
/// the frame limit.
const STORE_BATCH_BYTES: usize = 1 << 20;

impl Merge for ClientEvent {
    fn merge(&mut self, next: Self) -> Option<Self> {
        match (self, next) {
            (ClientEvent::Done(a), ClientEvent::Done(b)) => {
                a.extend(b);
                None
            }
            (ClientEvent::SendData(a), ClientEvent::SendData(b))
            | (ClientEvent::DataNotNeeded(a), ClientEvent::DataNotNeeded(b)) => {
                a.extend(b);
                None
            }
            (_, next) => Some(next),
        }
    }
}

impl Merge for WorkerCommand {
    fn merge(&mut self, next: Self) -> Option<Self> {
        match (self, next) {
            (WorkerCommand::Compute(a), WorkerCommand::Compute(b)) => {
                a.extend(b);
                None
            }
            (WorkerCommand::Free(a), WorkerCommand::Free(b)) => {
                a.extend(b);
                None
            }
            (WorkerCommand::Store(a), WorkerCommand::Store(b)) => {
                let size = |v: &[wask_proto::msg::StoreData]| -> usize {
                    v.iter().map(|d| d.value.len()).sum()
                };
                if size(a) + size(&b) > STORE_BATCH_BYTES {
                    return Some(WorkerCommand::Store(b));
                }
                a.extend(b);
                None
            }
            (_, next) => Some(next),
        }
    }
}

/// Appends `msg`, merging it into the last message when possible.
pub(super) fn push<M: Merge>(out: &mut Vec<M>, msg: M) {
    let rest = match out.last_mut() {
        Some(last) => last.merge(msg),
        None => Some(msg),
    };
    if let Some(m) = rest {
        out.push(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wask_proto::KeyId;

    #[test]
    fn merges_runs_and_keeps_order() {
        let mut out = Vec::new();
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
        let mut out = Vec::new();
        for n in 0..3 {
            push(&mut out, store(n));
        }
        // 600 KiB + 600 KiB passes 1 MiB: no two in one frame.
        assert_eq!(out.len(), 3);
        let mut out = Vec::new();
        push(&mut out, ClientEvent::SendData(vec![KeyId([1; 16])]));
        push(&mut out, ClientEvent::SendData(vec![KeyId([2; 16])]));
        push(&mut out, ClientEvent::DataNotNeeded(vec![KeyId([3; 16])]));
        assert_eq!(out.len(), 2);
    }
}
