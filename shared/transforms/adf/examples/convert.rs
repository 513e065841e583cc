//! Converts HTML from stdin and prints the ADF document, the images and the warnings.
//! `echo '<p>Hi <b>there</b></p>' | cargo run -p deskshift-adf --example convert`

use std::io::Read;

fn main() {
    let mut html = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut html) {
        eprintln!("could not read HTML from stdin: {e}");
        std::process::exit(2);
    }
    let r = deskshift_adf::html_to_adf(&html, &deskshift_adf::AdfOptions::default());
    println!(
        "{}",
        serde_json::to_string_pretty(&r.doc).expect("a JSON value serializes")
    );
    for i in &r.images {
        eprintln!("image: {i:?}");
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
}
