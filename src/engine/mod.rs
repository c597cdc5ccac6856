//! The per-instance alert engine core: tier state machine, notification rules, action gating.
pub mod action;
pub mod notify;
pub mod state;
