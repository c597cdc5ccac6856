//! `tocsin test`: rule unit tests (SPEC §8).
pub mod notation;
