//! Writes the Step Functions definitions into `statemachine/` (or the directory given).

use std::path::PathBuf;

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    match deskshift_statemachine::write_all(&dir) {
        Ok(files) => {
            for f in files {
                println!("{}", dir.join(f).display());
            }
        }
        Err(e) => {
            eprintln!(
                "cannot write the definitions into {}: {e}; check the directory exists and is writable",
                dir.display()
            );
            std::process::exit(1);
        }
    }
}
