//! The worker's wasm threads.
