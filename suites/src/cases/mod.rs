//! The case bodies, one module per area.

pub mod world;
