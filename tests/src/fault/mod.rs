//! Fault injection for the fault run (`fault_run`, tests/src/bin/fault_run.rs): a seeded
//! random number generator and a proxy that injects one planned fault per connection.

pub mod proxy;
pub mod rng;
