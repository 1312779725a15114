//! Shared parts of the fuzz targets (`tests/fuzz_*.rs`).
#![allow(dead_code)] // each target uses its own part of this

pub mod config;
pub mod memory;
pub mod mutate;
