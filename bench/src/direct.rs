//! math.wasm run directly in a worker's `Sandbox`, in this thread, with no
//! cluster: what the sandbox case measures and what `busy` is calibrated
//! against.

use anyhow::{Context, anyhow};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wask_proto::limits::ResolvedLimits;
use wask_worker::sandbox::{Compiled, RunOutput, RunRequest, Sandbox, SandboxConfig};

/// A sandbox with math.wasm compiled in it.
pub struct DirectMath {
    sandbox: Sandbox,
    module: Compiled,
}

impl DirectMath {
    /// Creates a sandbox sized like a `LocalCluster` worker of one thread
    /// (a pool of 3 instances, a 4 GiB memory ceiling) and compiles
    /// math.wasm.
    pub fn new() -> anyhow::Result<DirectMath> {
        let sandbox = Sandbox::new(SandboxConfig {
            max_instances: 3,
            memory_ceiling: 4 << 30,
            ..SandboxConfig::default()
        })?;
        let wasm = std::fs::read(env!("WASK_GUEST_MATH")).context("reading math.wasm")?;
        let module = sandbox
            .compile(&wasm)
            .map_err(|e| anyhow!("compiling math.wasm: {e}"))?;
        Ok(DirectMath { sandbox, module })
    }

    /// The task number of `name`.
    pub fn func(&self, name: &str) -> anyhow::Result<u32> {
        self.module
            .info()
            .task(name)
            .map(|(func, _)| func)
            .ok_or_else(|| anyhow!("math.wasm has no task {name}"))
    }

    /// One call in a fresh instance, with the default limits, on raw
    /// postcard arguments.
    pub fn run_raw(&self, func: u32, args: &[u8]) -> RunOutput {
        self.sandbox.run(
            &self.module,
            RunRequest {
                func,
                args,
                limits: ResolvedLimits::default(),
                seed: [0; 32],
                cancel: None,
                on_check: None,
            },
        )
    }

    /// One call with typed arguments and result.
    pub fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        func: u32,
        args: &A,
    ) -> anyhow::Result<R> {
        let bytes = postcard::to_allocvec(args)?;
        let out = self.run_raw(func, &bytes);
        let result = out.result.map_err(|e| anyhow!("task failed: {e}"))?;
        Ok(postcard::from_bytes(&result)?)
    }
}
