//! The committed definitions are what the flow builds today.

use std::path::PathBuf;

#[test]
fn committed_definitions_are_current() {
    // The checkout being tested (cargo sets this at run time too; a shared build directory keeps
    // the build-time path of whichever checkout built it first).
    let dir = &PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    );
    let stale = deskshift_statemachine::stale(dir);
    assert!(
        stale.is_empty(),
        "statemachine/{} differ from the flow in shared/core/src/flow.rs: run `cargo run -p deskshift-statemachine` and commit",
        stale.join(", statemachine/")
    );
}
