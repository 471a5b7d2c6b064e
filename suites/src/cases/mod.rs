//! The case bodies, one module per area.

pub mod runtime;
pub mod world;
