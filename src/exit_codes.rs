//! Exit codes, in one place: 0 ok, 1 failed run, 2 usage (clap's own).

pub const EXIT_SUCCESS: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
