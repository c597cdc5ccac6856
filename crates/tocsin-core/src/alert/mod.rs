//! The alert vocabulary and its per-instance machines, below the rules that configure them
//! and the engine that drives them.
//!
//! Owns the tier state machine ([`state`]: `inactive`, `pending`, `firing`, its transitions
//! and `no_data` handling), the notification rules ([`notify`]: cooldowns, coalescing,
//! repeats, flapping, acknowledgements, the notification kinds) and the action gates
//! ([`action`]: cooldown, `max_per_hour`). Each is a plain serializable value with
//! `step`-style methods taking `now`: no rule, no series, no clock. `rules` compiles the
//! policies these take, `engine` feeds them values, and `message`, `route` and `receivers`
//! speak their vocabulary (`NoteKind`, `Transition`).

pub mod action;
pub mod notify;
pub mod state;
