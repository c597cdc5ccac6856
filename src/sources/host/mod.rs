//! Host sources: metrics of the machine itself ([`system`], via sysinfo) and regex match counts
//! from tailed log files ([`logs`]). Both only collect; the daemon decides when to call them and
//! timestamps what they emit.

pub mod logs;
pub mod system;
