//! Tenant configuration: `wask-scheduler --config tenants.toml`.
//!
//! ```toml
//! [[tenant]]
//! name = "alice"
//! token_blake3 = "…64 hex…"   # `wask-scheduler --hash-token <TOKEN>` prints it
//! weight = 2                  # share of the cluster relative to others
//! max_in_flight = 64          # tasks running at once
//! max_unfinished = 100000     # tasks submitted and not finished
//! max_bytes = "8GiB"          # results held on the workers
//! max_module_bytes = "64MiB"  # modules uploaded
//! [tenant.limits]             # per-task defaults and maxima
//! default_time_ms = 60000
//! max_time_ms = 600000
//! max_memory = "1GiB"
//! max_stack = "1MiB"          # wasm stack; also default_stack, and
//!                             # default_/max_ result and output sizes
//! ```
//!
//! Tokens are stored only as blake3 hashes; a presented token is hashed and
//! compared with every entry in constant time.

use crate::server::Authenticator;
use crate::state::TenantPolicy;
use serde::Deserialize;
use wask_proto::TenantId;
use wask_proto::limits::{ResolvedLimits, parse_bytes};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantsFile {
    /// The tenants.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantEntry>,
}

/// A size written as a number of bytes or a string like `"4GiB"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// Bytes.
    Bytes(u64),
    /// With a unit.
    Text(String),
}

impl Size {
    fn bytes(&self) -> Result<u64, String> {
        match self {
            Size::Bytes(b) => Ok(*b),
            Size::Text(t) => parse_bytes(t),
        }
    }
}

/// One tenant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    /// Name for logs.
    pub name: String,
    /// blake3 of the token, hex.
    pub token_blake3: String,
    /// Fair-share weight (default 1).
    pub weight: Option<u32>,
    /// Tasks running at once.
    pub max_in_flight: Option<u64>,
    /// Tasks submitted and unfinished.
    pub max_unfinished: Option<u64>,
    /// Bytes of results held.
    pub max_bytes: Option<Size>,
    /// Bytes of modules uploaded.
    pub max_module_bytes: Option<Size>,
    /// Per-task limits.
    #[serde(default)]
    pub limits: LimitsEntry,
}

/// Per-task limits of a tenant: defaults and maxima.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsEntry {
    /// Default wall time, ms.
    pub default_time_ms: Option<u64>,
    /// Most wall time, ms.
    pub max_time_ms: Option<u64>,
    /// Default memory.
    pub default_memory: Option<Size>,
    /// Most memory.
    pub max_memory: Option<Size>,
    /// Default result size.
    pub default_result: Option<Size>,
    /// Most result size.
    pub max_result: Option<Size>,
    /// Default output size.
    pub default_output: Option<Size>,
    /// Most output size.
    pub max_output: Option<Size>,
    /// Default wasm stack.
    pub default_stack: Option<Size>,
    /// Most wasm stack.
    pub max_stack: Option<Size>,
}

/// A parsed, checked configuration.
#[derive(Debug, Clone)]
pub struct Tenants {
    entries: Vec<Tenant>,
}

#[derive(Debug, Clone)]
struct Tenant {
    id: TenantId,
    name: String,
    token_hash: [u8; 32],
    policy: TenantPolicy,
    max_module_bytes: u64,
}

/// The hash stored for `token`.
pub fn hash_token(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

impl Tenants {
    /// Parses the TOML text; `defaults` and `max` are the cluster's limits
    /// (a tenant's maxima can only lower them).
    pub fn parse(
        text: &str,
        defaults: ResolvedLimits,
        max: ResolvedLimits,
    ) -> Result<Tenants, String> {
        let file: TenantsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.tenants.is_empty() {
            return Err("no [[tenant]] entries".into());
        }
        let mut entries = Vec::new();
        for (i, t) in file.tenants.into_iter().enumerate() {
            let ctx = |e: String| format!("tenant {:?}: {e}", t.name);
            let hash = wask_proto::scheduler_file::from_hex(&t.token_blake3)
                .filter(|h| h.len() == 32)
                .ok_or_else(|| ctx("token_blake3 must be 64 hex digits".into()))?;
            let mut token_hash = [0u8; 32];
            token_hash.copy_from_slice(&hash);
            if entries
                .iter()
                .any(|e: &Tenant| e.token_hash == token_hash || e.name == t.name)
            {
                return Err(ctx("duplicate name or token".into()));
            }
            let size = |s: &Option<Size>, default: u64| -> Result<u64, String> {
                s.as_ref()
                    .map(Size::bytes)
                    .transpose()
                    .map(|v| v.unwrap_or(default))
                    .map_err(ctx)
            };
            let l = &t.limits;
            let max_limits = ResolvedLimits {
                time_ms: l.max_time_ms.unwrap_or(max.time_ms).min(max.time_ms),
                memory_bytes: size(&l.max_memory, max.memory_bytes)?.min(max.memory_bytes),
                result_bytes: size(&l.max_result, max.result_bytes)?.min(max.result_bytes),
                output_bytes: size(&l.max_output, max.output_bytes)?.min(max.output_bytes),
                stack_bytes: size(&l.max_stack, max.stack_bytes)?.min(max.stack_bytes),
            };
            let defaults = ResolvedLimits {
                time_ms: l
                    .default_time_ms
                    .unwrap_or(defaults.time_ms)
                    .min(max_limits.time_ms),
                memory_bytes: size(&l.default_memory, defaults.memory_bytes)?
                    .min(max_limits.memory_bytes),
                result_bytes: size(&l.default_result, defaults.result_bytes)?
                    .min(max_limits.result_bytes),
                output_bytes: size(&l.default_output, defaults.output_bytes)?
                    .min(max_limits.output_bytes),
                stack_bytes: size(&l.default_stack, defaults.stack_bytes)?
                    .min(max_limits.stack_bytes),
            };
            let weight = t.weight.unwrap_or(1);
            if weight == 0 {
                return Err(ctx("weight must be at least 1".into()));
            }
            entries.push(Tenant {
                // Tenant 0 is the default tenant of an open cluster.
                id: i as TenantId + 1,
                name: t.name.clone(),
                token_hash,
                policy: TenantPolicy {
                    weight,
                    max_in_flight: t.max_in_flight.unwrap_or(u64::MAX).max(1),
                    max_unfinished: t.max_unfinished.unwrap_or(u64::MAX),
                    max_bytes: size(&t.max_bytes, u64::MAX)?,
                    defaults,
                    max_limits,
                },
                max_module_bytes: size(&t.max_module_bytes, u64::MAX)?,
            });
        }
        Ok(Tenants { entries })
    }

    /// The policies for the core.
    pub fn policies(&self) -> Vec<(TenantId, TenantPolicy)> {
        self.entries
            .iter()
            .map(|t| (t.id, t.policy.clone()))
            .collect()
    }

    /// (id, name) of every tenant.
    pub fn names(&self) -> Vec<(TenantId, String)> {
        self.entries
            .iter()
            .map(|t| (t.id, t.name.clone()))
            .collect()
    }
}

impl Authenticator for Tenants {
    fn tenant(&self, token: Option<&str>) -> Option<TenantId> {
        let token = token?;
        let hash = blake3::hash(token.as_bytes());
        // Compare with every entry (blake3::Hash equality is constant-time)
        // so the time does not tell which entry came close.
        let mut found = None;
        for t in &self.entries {
            if hash == blake3::Hash::from_bytes(t.token_hash) {
                found = Some(t.id);
            }
        }
        found
    }

    fn module_quota(&self, tenant: TenantId) -> u64 {
        self.entries
            .iter()
            .find(|t| t.id == tenant)
            .map(|t| t.max_module_bytes)
            .unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Tenants, String> {
        Tenants::parse(text, ResolvedLimits::default(), ResolvedLimits::default())
    }

    #[test]
    fn tokens_map_to_tenants() {
        let text = format!(
            "[[tenant]]\nname = \"a\"\ntoken_blake3 = \"{}\"\nweight = 3\nmax_bytes = \"1KiB\"\nmax_module_bytes = 100\n\
             [[tenant]]\nname = \"b\"\ntoken_blake3 = \"{}\"\n[tenant.limits]\nmax_time_ms = 5\n",
            hash_token("secret-a"),
            hash_token("secret-b")
        );
        let t = parse(&text).unwrap();
        assert_eq!(t.tenant(Some("secret-a")), Some(1));
        assert_eq!(t.tenant(Some("secret-b")), Some(2));
        assert_eq!(t.tenant(Some("secret-c")), None);
        assert_eq!(t.tenant(None), None);
        assert_eq!(t.module_quota(1), 100);
        let p = t.policies();
        assert_eq!(p[0].1.weight, 3);
        assert_eq!(p[0].1.max_bytes, 1024);
        assert_eq!(p[1].1.max_limits.time_ms, 5);
        assert_eq!(
            p[1].1.defaults.time_ms, 5,
            "defaults are capped by the maxima"
        );
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(parse("").is_err());
        assert!(parse("[[tenant]]\nname = \"a\"\ntoken_blake3 = \"xx\"\n").is_err());
        let h = hash_token("t");
        assert!(
            parse(&format!(
                "[[tenant]]\nname = \"a\"\ntoken_blake3 = \"{h}\"\nbogus = 1\n"
            ))
            .is_err()
        );
        assert!(parse(&format!("[[tenant]]\nname = \"a\"\ntoken_blake3 = \"{h}\"\n[[tenant]]\nname = \"b\"\ntoken_blake3 = \"{h}\"\n")).is_err());
        assert!(
            parse(&format!(
                "[[tenant]]\nname = \"a\"\ntoken_blake3 = \"{h}\"\nweight = 0\n"
            ))
            .is_err()
        );
    }
}
