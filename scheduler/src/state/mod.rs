//! The sans-io scheduler core.
