//! The committed definitions are what the flow builds today.

use std::path::Path;

#[test]
fn committed_definitions_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stale = deskshift_statemachine::stale(dir);
    assert!(
        stale.is_empty(),
        "statemachine/{} differ from the flow in shared/core/src/flow.rs: run `cargo run -p deskshift-statemachine` and commit",
        stale.join(", statemachine/")
    );
}
