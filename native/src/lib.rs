//! The compiled core of `etl`: message values in, PostgreSQL binary COPY rows and
//! rejections out, one call per slice of a batch (see `etl/core/decode.py` for the contract).
//!
//! `json` scans strict JSON keeping every token as sent, `fields` holds the scalar rules,
//! `message` applies the message contract to one value and names its constants, `copy` writes
//! binary COPY tuples and `batch` runs a slice, one piece of rows per partition. `python`
//! (feature "python", turned on by maturin) is the module `etl.core._native`: typed results
//! and the contract's constants for Python; without it `cargo test` checks the rules alone.

pub mod batch;
pub mod copy;
pub mod fields;
pub mod json;
pub mod message;

#[cfg(feature = "python")]
mod python;
