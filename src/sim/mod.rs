//! Simulated nodes that boot over the real protocols, for `pxelab demo`, tests and benchmarks.

pub mod demo;
