//! Expressions: compiles a rule's `expr` (SPEC §3.1) and evaluates it per instance.

use std::time::Duration;

use crate::series::{Timestamp, Window};

/// A compiled expression.
#[derive(Clone, Debug)]
pub struct Expr {
    source: String,
}

/// The static type of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// A number (f64).
    Number,
    /// A condition.
    Bool,
}

/// How an expression reads a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKind {
    /// One series per instance.
    Series,
    /// Every series of the instance's aggregation group.
    Aggregate,
}

/// One metric the expression reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The metric name.
    pub metric: String,
    /// How it is read.
    pub kind: SlotKind,
}

/// A compile error.
#[derive(Clone, Debug, PartialEq)]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Byte offset into the expression source, when known.
    pub offset: Option<usize>,
}

/// What the evaluator reads for one rule instance.
pub trait Data {
    /// The window of the single series `slot` reads for this instance.
    fn series(&self, slot: usize) -> Option<&Window>;
    /// Calls `f` with the window of each series in this instance's group for `slot`.
    fn group(&self, slot: usize, f: &mut dyn FnMut(&Window));
}

/// The evaluation context.
#[derive(Clone, Copy, Debug)]
pub struct EvalCtx {
    /// Evaluation time.
    pub now: Timestamp,
    /// Staleness.
    pub staleness: Duration,
}

impl Expr {
    /// Compiles `src`.
    pub fn compile(src: &str) -> Result<Expr, ExprError> {
        let _ = src;
        unimplemented!()
    }
    /// The type.
    pub fn ty(&self) -> Type {
        unimplemented!()
    }
    /// The slots.
    pub fn slots(&self) -> &[Slot] {
        unimplemented!()
    }
    /// Longest window.
    pub fn longest_window(&self) -> Duration {
        unimplemented!()
    }
    /// Evaluates.
    pub fn eval<D: Data + ?Sized>(&self, ctx: &EvalCtx, data: &D) -> Option<f64> {
        let _ = (ctx, data);
        unimplemented!()
    }
    /// The source.
    pub fn source(&self) -> &str {
        &self.source
    }
}
