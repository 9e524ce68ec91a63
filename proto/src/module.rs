//! Inspecting a wasm module before anyone runs it.
//!
//! [`inspect`] validates the bytes with wasmparser, checks them against a
//! [`ModulePolicy`] (size, imports, counts, initial memory, the wask ABI
//! exports) and reads the task signatures. The client runs it to give a
//! clear error before uploading, the scheduler to refuse a bad upload, and
//! the worker before compiling.

use crate::ModuleHash;
use crate::signature::{self, ALLOC_EXPORT, SECTION, TASK_EXPORT_PREFIX, TaskSignature};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType, Validator, WasmFeatures};

/// The WASI preview 1 functions the worker provides (all but a few refuse
/// with an errno: there are no files, sockets, args or environment).
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Every `wasi_snapshot_preview1` import a module may have.
pub const WASI_FUNCTIONS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The module of wask's own host functions.
pub const WASK_MODULE: &str = "wask";

/// wask's own host functions: `panic(ptr, len)` records a panic message.
pub const WASK_FUNCTIONS: &[&str] = &["panic"];

/// The wasm features modules may use: WebAssembly 2.0 (what rustc's
/// `wasm32-wasip1` target emits), and nothing past it.
pub fn features() -> WasmFeatures {
    WasmFeatures::WASM2
}

/// What a module may contain.
#[derive(Clone, Debug)]
pub struct ModulePolicy {
    /// Largest module in bytes.
    pub max_size: usize,
    /// Most tasks declared.
    pub max_tasks: usize,
    /// Most functions (imported and defined).
    pub max_functions: u32,
    /// Most tables.
    pub max_tables: u32,
    /// Most table elements declared initially.
    pub max_table_elements: u64,
    /// Most globals.
    pub max_globals: u32,
    /// Most bytes of linear memory declared initially.
    pub max_initial_memory: u64,
    /// Most data segments.
    pub max_data_segments: u32,
}

impl Default for ModulePolicy {
    fn default() -> Self {
        ModulePolicy {
            max_size: crate::limits::MAX_MODULE,
            max_tasks: crate::limits::MAX_TASKS_PER_MODULE,
            max_functions: 200_000,
            max_tables: 4,
            max_table_elements: 100_000,
            max_globals: 10_000,
            max_initial_memory: 256 << 20,
            max_data_segments: 100_000,
        }
    }
}

/// What [`inspect`] learned about a module.
#[derive(Clone, Debug)]
pub struct ModuleInfo {
    /// blake3 of the bytes.
    pub hash: ModuleHash,
    /// Size in bytes.
    pub size: usize,
    /// The tasks, in the order of the section (a task's index is its `func`).
    pub tasks: Vec<TaskSignature>,
    /// Bytes of linear memory declared initially.
    pub initial_memory: u64,
}

impl ModuleInfo {
    /// Index and signature of the task called `name`.
    pub fn task(&self, name: &str) -> Option<(u32, &TaskSignature)> {
        self.tasks
            .iter()
            .enumerate()
            .find(|(_, t)| t.name == name)
            .map(|(i, t)| (i as u32, t))
    }
}

/// Why a module was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModuleError {
    /// Larger than allowed.
    #[error("module is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not valid WebAssembly (or uses features wask does not enable).
    #[error("invalid wasm: {0}")]
    Invalid(String),
    /// Imports something wask does not provide.
    #[error(
        "import {module}.{name} is not provided by wask (only {WASI_MODULE} and {WASK_MODULE} functions are)"
    )]
    ForbiddenImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// Imports a memory, table or global.
    #[error("import {module}.{name} is not a function; modules may import only functions")]
    NonFunctionImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// Over a count limit.
    #[error("module has {count} {what}, over the limit of {limit}")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// How many.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// An export the ABI needs is missing or has the wrong type.
    #[error("export {name}: {problem}")]
    BadExport {
        /// The export.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The task section is malformed.
    #[error("task section: {0}")]
    Signatures(#[from] signature::SignatureError),
    /// The module declares no tasks.
    #[error("module declares no tasks (no {SECTION} section; build it with #[wask_guest::task])")]
    NoTasks,
}

/// Validates `wasm` against `policy` and reads its tasks.
pub fn inspect(wasm: &[u8], policy: &ModulePolicy) -> Result<ModuleInfo, ModuleError> {
    if wasm.len() > policy.max_size {
        return Err(ModuleError::TooLarge {
            size: wasm.len(),
            limit: policy.max_size,
        });
    }
    let mut validator = Validator::new_with_features(features());
    let types = validator
        .validate_all(wasm)
        .map_err(|e| ModuleError::Invalid(e.to_string()))?;
    let types = types.as_ref();

    let mut tasks = None;
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| ModuleError::Invalid(e.to_string()))?;
        match payload {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| ModuleError::Invalid(e.to_string()))?;
                    let allowed = match import.module {
                        WASI_MODULE => WASI_FUNCTIONS.contains(&import.name),
                        WASK_MODULE => WASK_FUNCTIONS.contains(&import.name),
                        _ => false,
                    };
                    if !allowed {
                        return Err(ModuleError::ForbiddenImport {
                            module: import.module.into(),
                            name: import.name.into(),
                        });
                    }
                    if !matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        return Err(ModuleError::NonFunctionImport {
                            module: import.module.into(),
                            name: import.name.into(),
                        });
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| ModuleError::Invalid(e.to_string()))?;
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            Payload::DataSection(reader) if reader.count() > policy.max_data_segments => {
                return Err(ModuleError::TooMany {
                    what: "data segments",
                    count: reader.count() as u64,
                    limit: policy.max_data_segments as u64,
                });
            }
            Payload::CustomSection(reader) if reader.name() == SECTION => {
                let parsed = signature::parse_section(reader.data(), policy.max_tasks)?;
                match &mut tasks {
                    None => tasks = Some(parsed),
                    Some(existing) => existing.extend(parsed),
                }
            }
            _ => {}
        }
    }

    let check = |what: &'static str, count: u64, limit: u64| {
        if count > limit {
            Err(ModuleError::TooMany { what, count, limit })
        } else {
            Ok(())
        }
    };
    check(
        "functions",
        types.function_count() as u64,
        policy.max_functions as u64,
    )?;
    check(
        "tables",
        types.table_count() as u64,
        policy.max_tables as u64,
    )?;
    check(
        "globals",
        types.global_count() as u64,
        policy.max_globals as u64,
    )?;
    check("memories", types.memory_count() as u64, 1)?;
    let mut table_elements = 0u64;
    for i in 0..types.table_count() {
        table_elements += types.table_at(i).initial;
    }
    check(
        "initial table elements",
        table_elements,
        policy.max_table_elements,
    )?;
    let initial_memory = if types.memory_count() == 1 {
        let m = types.memory_at(0);
        if m.memory64 || m.shared {
            return Err(ModuleError::Invalid(
                "64-bit and shared memories are not supported".into(),
            ));
        }
        m.initial.saturating_mul(65536)
    } else {
        0
    };
    check(
        "initial bytes of memory",
        initial_memory,
        policy.max_initial_memory,
    )?;

    let tasks = tasks.ok_or(ModuleError::NoTasks)?;
    if tasks.is_empty() {
        return Err(ModuleError::NoTasks);
    }

    let func_type =
        |name: &str| -> Result<(Vec<ValType>, Vec<ValType>), ModuleError> {
            let (_, kind, index) = exports.iter().find(|(n, _, _)| n == name).ok_or_else(|| {
                ModuleError::BadExport {
                    name: name.into(),
                    problem: "missing".into(),
                }
            })?;
            if *kind != ExternalKind::Func {
                return Err(ModuleError::BadExport {
                    name: name.into(),
                    problem: "not a function".into(),
                });
            }
            let id = types.core_function_at(*index);
            let f = types[id].unwrap_func();
            Ok((f.params().to_vec(), f.results().to_vec()))
        };
    let expect = |name: &str, params: &[ValType], results: &[ValType]| -> Result<(), ModuleError> {
        let (p, r) = func_type(name)?;
        if p != params || r != results {
            return Err(ModuleError::BadExport {
                name: name.into(),
                problem: format!(
                    "has type {p:?} -> {r:?}, the wask ABI needs {params:?} -> {results:?}"
                ),
            });
        }
        Ok(())
    };
    expect(ALLOC_EXPORT, &[ValType::I32], &[ValType::I32])?;
    match exports.iter().find(|(n, _, _)| n == "memory") {
        Some((_, ExternalKind::Memory, _)) => {}
        _ => {
            return Err(ModuleError::BadExport {
                name: "memory".into(),
                problem: "missing".into(),
            });
        }
    }
    for t in &tasks {
        expect(
            &format!("{TASK_EXPORT_PREFIX}{}", t.name),
            &[ValType::I32, ValType::I32],
            &[ValType::I64],
        )?;
    }
    Ok(ModuleInfo {
        hash: ModuleHash::of(wasm),
        size: wasm.len(),
        tasks,
        initial_memory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test module holds beyond the wask ABI's memory, `wask:alloc`
    /// and one task (two functions, no tables, globals or data).
    #[derive(Clone, Copy, Default)]
    struct Extra {
        /// Imported `wasi_snapshot_preview1` functions.
        imports: usize,
        /// Defined functions.
        functions: usize,
        /// Tables of `table_size` elements each.
        tables: usize,
        table_size: u64,
        globals: usize,
        data_segments: usize,
    }

    fn module(extra: Extra) -> Vec<u8> {
        let imports: String = WASI_FUNCTIONS[..extra.imports]
            .iter()
            .map(|name| format!("(import \"{WASI_MODULE}\" \"{name}\" (func))"))
            .collect();
        let repeat = |n: usize, item: &str| item.repeat(n);
        let wat = format!(
            r#"(module {imports}
                 (memory (export "memory") 1)
                 (func (export "{ALLOC_EXPORT}") (param i32) (result i32) (i32.const 1024))
                 (func (export "{TASK_EXPORT_PREFIX}t") (param i32 i32) (result i64) (i64.const 0))
                 {} {} {} {})"#,
            repeat(extra.functions, "(func)"),
            repeat(
                extra.tables,
                &format!("(table {} funcref)", extra.table_size)
            ),
            repeat(extra.globals, "(global i32 (i32.const 0))"),
            repeat(extra.data_segments, r#"(data (i32.const 0) "x")"#),
        );
        let mut wasm = wat::parse_str(&wat).expect("valid test wat");
        // The task section: a custom section (id 0) of one record.
        let record = signature::encode_record(&TaskSignature {
            name: "t".into(),
            params: Vec::new(),
            result: "u8".into(),
        });
        let mut section = vec![SECTION.len() as u8];
        section.extend_from_slice(SECTION.as_bytes());
        section.extend(record);
        assert!(section.len() < 128, "one LEB128 byte of size");
        wasm.push(0);
        wasm.push(section.len() as u8);
        wasm.extend(section);
        wasm
    }

    /// Small limits, so the modules that reach them stay small.
    fn policy() -> ModulePolicy {
        ModulePolicy {
            max_functions: 4,
            max_tables: 2,
            max_table_elements: 10,
            max_globals: 3,
            max_data_segments: 2,
            ..ModulePolicy::default()
        }
    }

    /// Every count at its limit (the two ABI functions count).
    const AT_LIMITS: Extra = Extra {
        imports: 1,
        functions: 1,
        tables: 2,
        table_size: 5,
        globals: 3,
        data_segments: 2,
    };

    #[test]
    fn counts_at_their_limits_are_accepted() {
        let info = inspect(&module(AT_LIMITS), &policy()).unwrap();
        assert_eq!(info.tasks.len(), 1);
        assert_eq!(info.initial_memory, 65536);
    }

    #[test]
    fn each_count_over_its_limit_is_refused_naming_it() {
        let over = |what: &'static str, count: u64, limit: u64, extra: Extra| {
            assert_eq!(
                inspect(&module(extra), &policy()).unwrap_err(),
                ModuleError::TooMany { what, count, limit },
                "{what}"
            );
        };
        let functions = Extra {
            functions: 2,
            ..AT_LIMITS
        };
        over("functions", 5, 4, functions);
        // Imported functions count as functions.
        let imports = Extra {
            imports: 2,
            ..AT_LIMITS
        };
        over("functions", 5, 4, imports);
        let tables = Extra {
            tables: 3,
            table_size: 1,
            ..AT_LIMITS
        };
        over("tables", 3, 2, tables);
        let elements = Extra {
            table_size: 6,
            ..AT_LIMITS
        };
        over("initial table elements", 12, 10, elements);
        let globals = Extra {
            globals: 4,
            ..AT_LIMITS
        };
        over("globals", 4, 3, globals);
        let data = Extra {
            data_segments: 3,
            ..AT_LIMITS
        };
        over("data segments", 3, 2, data);
    }

    #[test]
    fn a_count_refusal_says_what_and_how_many() {
        let extra = Extra {
            globals: 4,
            ..AT_LIMITS
        };
        let error = inspect(&module(extra), &policy()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "module has 4 globals, over the limit of 3"
        );
    }

    #[test]
    fn the_default_policy_bounds_every_count() {
        let default = ModulePolicy::default();
        let small = Extra {
            functions: 10,
            tables: 1,
            table_size: 10,
            globals: 10,
            data_segments: 10,
            ..Extra::default()
        };
        assert!(inspect(&module(small), &default).is_ok());
        let globals = Extra {
            globals: default.max_globals as usize + 1,
            ..Extra::default()
        };
        assert!(matches!(
            inspect(&module(globals), &default),
            Err(ModuleError::TooMany {
                what: "globals",
                ..
            })
        ));
        let tables = Extra {
            tables: default.max_tables as usize + 1,
            ..Extra::default()
        };
        assert!(matches!(
            inspect(&module(tables), &default),
            Err(ModuleError::TooMany { what: "tables", .. })
        ));
    }
}
