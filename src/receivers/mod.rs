//! Receivers: turning a routed notification into something a person sees.
//!
//! Owns the formatting and sending of notifications per receiver kind. Today that is the
//! `console` receiver (one readable line on standard output); webhook, Slack, email and
//! Alertmanager receivers, with the durable outbox, are the delivery work still to come.
//! It never decides *whether* to notify (that is `engine::notify`) or *whom* (`route`).

pub mod console;
