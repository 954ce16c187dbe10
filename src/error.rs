//! Exit codes, in one place: 0 ok, 1 failed run, 2 usage (clap's own).

pub(crate) const EXIT_SUCCESS: u8 = 0;
pub(crate) const EXIT_FAILURE: u8 = 1;
pub(crate) const EXIT_USAGE: u8 = 2;

/// The exit code of a failed run: a flavor named on the command line (or in `FLAVORS`) that is
/// not a valid flavor is a usage error, as clap's own are; every other error is a failed run.
pub(crate) fn for_error(err: &anyhow::Error) -> u8 {
    let is_flavor = err.chain().count() == 1
        && err
            .downcast_ref::<crate::domain::flavor::FlavorError>()
            .is_some();
    if is_flavor {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}
