//! What the harness reads from the machine (/proc) and the ideal-time formula.

use serde::{Deserialize, Serialize};

/// Minimum calls a phase needs, by the formula printed in BENCHMARKS.md.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PhaseMinimum {
    /// Destination records the phase created (read from the destination): one create each.
    pub dest_writes: u64,
    /// Destination reads: one per distinct GET endpoint the phase needs, or one per validated record.
    pub dest_reads: u64,
    /// Source calls: one per page of every tab (discovery included), or one download per attachment.
    pub source: u64,
}

impl PhaseMinimum {
    pub fn dest(&self) -> u64 {
        self.dest_writes + self.dest_reads
    }
}

/// Ideal time of `calls` calls at `cap` at once, each taking `latency_ms`.
pub fn ideal_ms(calls: u64, cap: u64, latency_ms: u64) -> f64 {
    (calls.div_ceil(cap.max(1)) * latency_ms) as f64
}

/// A phase's ideal: the slower of its destination and source sides.
pub fn phase_ideal_ms(min: &PhaseMinimum, dest_cap: u64, source_cap: u64, latency_ms: u64) -> f64 {
    ideal_ms(min.dest(), dest_cap, latency_ms).max(ideal_ms(min.source, source_cap, latency_ms))
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Peak resident set of this process (VmHWM), in KiB.
pub fn vm_hwm_kb() -> u64 {
    status_kb("VmHWM:")
}

/// Current resident set (VmRSS), in KiB.
pub fn vm_rss_kb() -> u64 {
    status_kb("VmRSS:")
}

/// Memory the kernel can give without swapping (MemAvailable), KiB; 0 when unknown.
pub fn mem_available_kb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system, ms) of the whole process.
pub fn process_cpu_ms() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}

/// The machine, for the results file.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!(
        "{nproc} CPUs (nproc), {:.1} GiB memory, {cpu}",
        mem_kb as f64 / 1024.0 / 1024.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideal_rounds_up_to_whole_waves() {
        assert_eq!(ideal_ms(0, 10, 50), 0.0);
        assert_eq!(ideal_ms(1, 10, 50), 50.0);
        assert_eq!(ideal_ms(10, 10, 50), 50.0);
        assert_eq!(ideal_ms(11, 10, 50), 100.0);
        let m = PhaseMinimum {
            dest_writes: 95,
            dest_reads: 5,
            source: 30,
        };
        // Destination: 100 calls / 10 = 10 waves; source: 30 / 8 = 4 waves.
        assert_eq!(phase_ideal_ms(&m, 10, 8, 50), 500.0);
    }
}
