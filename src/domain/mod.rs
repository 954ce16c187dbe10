//! Domain: pure values and rules (flavors, configuration, variables); no I/O, no processes.

pub mod config;
pub mod derived;
pub mod digest;
pub mod flavor;
pub mod image_args;
pub mod suggest;
pub mod vars;
