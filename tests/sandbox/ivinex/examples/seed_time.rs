//! Measures how long generating a tenant takes: `cargo run -p sandbox-ivinex --example seed_time --release [tickets] [seed]`.

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let tickets: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(42);
    let started = Instant::now();
    let tenant = sandbox_ivinex::generate(seed, tickets);
    let elapsed = started.elapsed();
    for t in &tenant.tabs {
        eprintln!(
            "{:>14}: {:>7} records, {:>3} fields",
            t.def.name,
            t.records.len(),
            t.def.fields.len()
        );
    }
    let bytes: u64 = tenant.attachments.values().map(|a| a.size).sum();
    eprintln!(
        "{:>14}: {:>7} declared, {} bytes in total",
        "attachments",
        tenant.attachments.len(),
        bytes
    );
    eprintln!(
        "generated {tickets} tickets (seed {seed}) in {:.2?}",
        elapsed
    );
}
