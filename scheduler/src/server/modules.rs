//! Modules uploaded by tenants: bytes kept for workers, ids per
//! (tenant, hash), and registrations waiting for an upload.

use bytes::Bytes;
use std::sync::Arc;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::{ClientId, ModuleHash, ModuleId, TenantId};

/// Most registrations one client may have waiting for an upload.
pub(super) const MAX_PENDING_PER_CLIENT: usize = 64;

pub(super) struct ModuleEntry {
    pub hash: ModuleHash,
    pub bytes: Bytes,
}

#[derive(Default)]
pub(super) struct Modules {
    ids: FastMap<(TenantId, ModuleHash), ModuleId>,
    entries: Vec<ModuleEntry>,
    /// (tenant, hash) → (client, req) waiting for the bytes.
    pending: FastMap<(TenantId, ModuleHash), Vec<(ClientId, u32)>>,
    /// Bytes of modules per tenant.
    bytes: FastMap<TenantId, u64>,
    /// Uploads received per tenant (accepted or not), for `wask info`.
    uploads: FastMap<TenantId, u64>,
}

impl Modules {
    pub fn new() -> Modules {
        Modules {
            ids: new_map(),
            entries: Vec::new(),
            pending: new_map(),
            bytes: new_map(),
            uploads: new_map(),
        }
    }

    /// Counts one upload received from a client of `tenant`.
    pub fn count_upload(&mut self, tenant: TenantId) {
        *self.uploads.entry(tenant).or_default() += 1;
    }

    /// Uploads received from clients of `tenant`.
    pub fn uploads(&self, tenant: TenantId) -> u64 {
        self.uploads.get(&tenant).copied().unwrap_or(0)
    }

    pub fn lookup(&self, tenant: TenantId, hash: &ModuleHash) -> Option<ModuleId> {
        self.ids.get(&(tenant, *hash)).copied()
    }

    pub fn get(&self, module: ModuleId) -> Option<&ModuleEntry> {
        self.entries.get(module as usize)
    }

    /// Registers the bytes within the tenant's `quota` of module bytes;
    /// returns the id and whether it is new, or why it was refused.
    pub fn insert(
        &mut self,
        tenant: TenantId,
        hash: ModuleHash,
        bytes: Bytes,
        quota: u64,
    ) -> Result<(ModuleId, bool), String> {
        if let Some(id) = self.lookup(tenant, &hash) {
            return Ok((id, false));
        }
        let used = self.bytes.entry(tenant).or_default();
        if used.saturating_add(bytes.len() as u64) > quota {
            return Err(format!(
                "quota exceeded: {} more bytes of modules would pass the tenant's quota of {quota} ({} used)",
                bytes.len(),
                *used
            ));
        }
        *used += bytes.len() as u64;
        let id = self.entries.len() as ModuleId;
        self.entries.push(ModuleEntry { hash, bytes });
        self.ids.insert((tenant, hash), id);
        Ok((id, true))
    }

    /// Remembers a registration waiting for an upload; false if the client
    /// has too many waiting.
    pub fn wait(&mut self, tenant: TenantId, hash: ModuleHash, client: ClientId, req: u32) -> bool {
        let waiting: usize = self
            .pending
            .values()
            .map(|v| v.iter().filter(|(c, _)| *c == client).count())
            .sum();
        if waiting >= MAX_PENDING_PER_CLIENT {
            return false;
        }
        self.pending
            .entry((tenant, hash))
            .or_default()
            .push((client, req));
        true
    }

    /// The registrations that waited for (tenant, hash).
    pub fn take_waiting(&mut self, tenant: TenantId, hash: &ModuleHash) -> Vec<(ClientId, u32)> {
        self.pending.remove(&(tenant, *hash)).unwrap_or_default()
    }

    pub fn forget_client(&mut self, client: ClientId) {
        self.pending.retain(|_, v| {
            v.retain(|(c, _)| *c != client);
            !v.is_empty()
        });
    }
}

/// Task names of a module, as the core wants them.
pub(super) fn task_names(info: &wask_proto::module::ModuleInfo) -> Arc<[String]> {
    info.tasks.iter().map(|t| t.name.clone()).collect()
}
