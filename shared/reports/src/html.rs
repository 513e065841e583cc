//! The one-file HTML report: inline CSS, inline SVG charts drawn here, no scripts, every piece of
//! record data escaped. Rendering is a pure function of [`ReportData`].

use std::collections::BTreeMap;
use std::fmt::Write;

use deskshift_core::mapping::Approval;
use deskshift_core::phases::{
    AgentsReport, AttachmentsReport, Reconciliation, Scoping, ValidationReport,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One failed record as the report lists it (the payload stays in the CSV).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FailedRow {
    pub kind: String,
    pub source_id: String,
    pub phase: String,
    pub reason: String,
    pub error: String,
}

/// A phase of the flow with its times, from the flow checkpoints and the audit log.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub phase: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub done: bool,
    /// Destination writes the audit log holds for the phase.
    pub writes: u64,
}

/// A document of the package, linked from the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocumentLink {
    pub file: String,
    pub title: String,
    pub description: String,
}

/// Counts of the documentation inventories.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InventoryCounts {
    pub workflows: u64,
    pub views: u64,
    pub teams: u64,
    /// None when the change-history export was not asked for.
    pub change_entries: Option<u64>,
    pub by_equivalent: BTreeMap<String, u64>,
}

/// Everything the report shows.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReportData {
    pub generated_at: String,
    pub source_platform: String,
    pub destination_platform: String,
    pub scoping: Option<Scoping>,
    pub approval: Option<Approval>,
    pub reconciliation: Vec<Reconciliation>,
    /// Crosswalk entries per loaded kind and status (what the migration holds as created, failed, ...).
    pub crosswalk: BTreeMap<String, BTreeMap<String, u64>>,
    pub agents: Option<AgentsReport>,
    pub attachments: Option<AttachmentsReport>,
    pub validation: Option<ValidationReport>,
    pub failed_total: u64,
    /// The first failed records (all of them are in the CSV).
    pub failed: Vec<FailedRow>,
    /// Failures per (kind, reason).
    pub failures_by_reason: Vec<(String, String, u64)>,
    pub flags_total: u64,
    /// Flags per (code, kind), with one example message.
    pub flags_by_code: Vec<(String, String, u64, String)>,
    pub timeline: Vec<PhaseSpan>,
    pub documents: Vec<DocumentLink>,
    pub inventories: InventoryCounts,
    /// Rows shown per table before pointing at the full document.
    pub max_rows: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Good,
    Warn,
    Bad,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Verdict {
    pub level: Level,
    pub headline: String,
    pub details: Vec<String>,
}

impl ReportData {
    /// Records the migration holds as created in the destination, all loaded kinds together.
    pub fn records_moved(&self) -> u64 {
        self.crosswalk
            .values()
            .map(|c| c.get("created").copied().unwrap_or(0))
            .sum()
    }

    pub fn duration(&self) -> Option<jiff::SignedDuration> {
        let start = self
            .scoping
            .as_ref()
            .map(|s| s.at.clone())
            .or_else(|| self.timeline.iter().find_map(|p| p.started.clone()))?;
        let end = self
            .timeline
            .iter()
            .filter_map(|p| p.finished.clone())
            .max()?;
        let (s, e): (Timestamp, Timestamp) = (start.parse().ok()?, end.parse().ok()?);
        Some(e.duration_since(s))
    }

    pub fn verdict(&self) -> Verdict {
        let mut details = Vec::new();
        let pending: Vec<&str> = self
            .timeline
            .iter()
            .filter(|p| !p.done && p.phase != "rollback")
            .map(|p| p.phase.as_str())
            .collect();
        let gates: Vec<String> = self
            .reconciliation
            .iter()
            .filter(|r| !r.passed)
            .map(|r| {
                format!(
                    "{}: {}",
                    r.kind.map(|k| k.as_str()).unwrap_or("?"),
                    r.unexplained.join("; ")
                )
            })
            .collect();
        let (mismatches, missing) = self
            .validation
            .as_ref()
            .map(|v| (v.mismatches.len(), v.missing.len()))
            .unwrap_or((0, 0));
        if !gates.is_empty() {
            details.extend(
                gates
                    .iter()
                    .map(|g| format!("reconciliation gate failed for {g}")),
            );
        }
        if self.failed_total > 0 {
            details.push(format!(
                "{} could not move; each is in failed-records.csv with its payload and reason (fix and run `deskshift retry-failed`)",
                plural(self.failed_total, "record", "records")
            ));
        }
        if mismatches + missing > 0 {
            details.push(format!(
                "validation read back {} and {} missing in the destination (validation.json)",
                plural(mismatches as u64, "field mismatch", "field mismatches"),
                plural(missing as u64, "record", "records")
            ));
        }
        if self.flags_total > 0 {
            details.push(format!(
                "{} on records that moved but need a look (flags.csv)",
                plural(self.flags_total, "flag", "flags")
            ));
        }
        if !pending.is_empty() {
            details.insert(
                0,
                format!(
                    "phases not finished: {}; resume with `deskshift run`",
                    pending.join(", ")
                ),
            );
            return Verdict {
                level: if gates.is_empty() {
                    Level::Warn
                } else {
                    Level::Bad
                },
                headline: if gates.is_empty() {
                    "Incomplete: the migration has not run to the end".into()
                } else {
                    "Stopped at a reconciliation gate".into()
                },
                details,
            };
        }
        if !gates.is_empty() {
            return Verdict {
                level: Level::Bad,
                headline: "Reconciliation gate failed: differences are unexplained".into(),
                details,
            };
        }
        if self.failed_total > 0 || mismatches + missing > 0 {
            return Verdict {
                level: Level::Warn,
                headline: "Complete with exceptions: every record moved or is reported".into(),
                details,
            };
        }
        Verdict {
            level: Level::Good,
            headline: "Complete: every in-scope record moved and the sample validated".into(),
            details,
        }
    }
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

fn fmt_duration(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{:.1} s", d.as_secs_f64().max(0.0))
    }
}

fn kind_label(k: &str) -> String {
    match k {
        "account" => "Accounts".into(),
        "contact" => "Contacts".into(),
        "ticket" => "Tickets".into(),
        "activity" => "Activities".into(),
        "task" => "Tasks".into(),
        other => other.to_string(),
    }
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:0;color:#1d2733;background:#f4f6f8;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px}
header{background:#1d2733;color:#fff;padding:20px 24px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c5d0db;font-size:13px}
section{background:#fff;border-radius:8px;padding:18px 22px;margin:18px 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:18px;margin:0 0 12px}
h3{font-size:15px;margin:16px 0 8px}
.verdict{border-left:8px solid #2e7d32}
.verdict.warn{border-left-color:#ef6c00}
.verdict.bad{border-left-color:#c62828}
.verdict h2{font-size:20px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
.card{flex:1 1 150px;border:1px solid #dde3ea;border-radius:6px;padding:10px 14px}
.card .n{font-size:26px;font-weight:650;display:block}
.card .l{font-size:12px;color:#5b6b7b;text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid #e3e8ee;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}.muted{color:#6b7a89}
.legend{font-size:12px;margin:4px 0 8px}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
svg{max-width:100%;height:auto;display:block}
svg text{font-family:inherit;font-size:12px;fill:#1d2733}
ul.docs li{margin:4px 0}
code{background:#f0f3f6;padding:1px 4px;border-radius:3px}
@media print{body{background:#fff}section{box-shadow:none;border:1px solid #ddd}}
"#;

const SEGMENTS: [(&str, &str); 6] = [
    ("created", "#2e7d32"),
    ("updated", "#1565c0"),
    ("unchanged", "#78909c"),
    ("existing", "#00838f"),
    ("failed", "#c62828"),
    ("excluded", "#cfd8dc"),
];

/// One bar segment: name, colour, count.
type Segment<'a> = (&'a str, &'a str, u64);
/// One bar: its label and segments.
type BarRow<'a> = (String, Vec<Segment<'a>>);

/// A 100 % stacked bar per row, with its segments' counts as a tooltip and the total on the right.
fn stacked_bars(rows: &[BarRow<'_>]) -> String {
    let (label_w, bar_w, row_h, right) = (120.0, 620.0, 30.0, 150.0);
    let width = label_w + bar_w + right;
    let height = row_h * rows.len() as f64 + 10.0;
    let mut s = format!(
        r#"<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="records per object">"#
    );
    for (i, (label, segs)) in rows.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let total: u64 = segs.iter().map(|x| x.2).sum();
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 8.0,
            y + 15.0,
            esc(&shorten(label, 18))
        );
        let _ = write!(
            s,
            "<rect x=\"{label_w}\" y=\"{y}\" width=\"{bar_w}\" height=\"20\" fill=\"#eef1f4\"/>"
        );
        let mut x = label_w;
        for (name, color, n) in segs {
            if *n == 0 || total == 0 {
                continue;
            }
            let w = bar_w * *n as f64 / total as f64;
            let _ = write!(
                s,
                r#"<rect x="{x:.2}" y="{y}" width="{w:.2}" height="20" fill="{color}"><title>{}: {n}</title></rect>"#,
                esc(name)
            );
            if w > 34.0 {
                let _ = write!(
                    s,
                    r#"<text x="{:.2}" y="{}" text-anchor="middle" style="fill:#fff">{n}</text>"#,
                    x + w / 2.0,
                    y + 14.5
                );
            }
            x += w;
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}">{total} in source</text>"#,
            label_w + bar_w + 8.0,
            y + 15.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars scaled to the largest value.
fn bars(items: &[(String, u64)], color: &str, aria: &str) -> String {
    let (label_w, bar_w, row_h) = (330.0, 420.0, 24.0);
    let width = label_w + bar_w + 60.0;
    let height = row_h * items.len() as f64 + 8.0;
    let max = items.iter().map(|x| x.1).max().unwrap_or(1).max(1) as f64;
    let mut s = format!(
        r#"<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{}">"#,
        esc(aria)
    );
    for (i, (label, n)) in items.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let w = (bar_w * *n as f64 / max).max(2.0);
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end"><title>{}</title>{}</text>"#,
            label_w - 8.0,
            y + 13.0,
            esc(label),
            esc(&shorten(label, 52))
        );
        let _ = write!(
            s,
            r#"<rect x="{label_w}" y="{y}" width="{w:.2}" height="17" fill="{color}"/><text x="{:.2}" y="{}">{n}</text>"#,
            label_w + w + 6.0,
            y + 13.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Phases on a time axis (a Gantt chart).
fn gantt(spans: &[PhaseSpan]) -> Option<String> {
    let parsed: Vec<(&PhaseSpan, Timestamp, Timestamp)> = spans
        .iter()
        .filter_map(|p| {
            let f: Timestamp = p.finished.as_deref()?.parse().ok()?;
            let s: Timestamp = p
                .started
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f);
            Some((p, s.min(f), f))
        })
        .collect();
    let t0 = parsed.iter().map(|x| x.1).min()?;
    let t1 = parsed.iter().map(|x| x.2).max()?;
    let total = t1.duration_since(t0).as_secs_f64().max(0.001);
    let (label_w, bar_w, row_h) = (130.0, 600.0, 22.0);
    let width = label_w + bar_w + 90.0;
    let height = row_h * parsed.len() as f64 + 30.0;
    let mut s = format!(
        r#"<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="timeline of phases">"#
    );
    for q in 0..=4 {
        let x = label_w + bar_w * q as f64 / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{x}\" y1=\"0\" x2=\"{x}\" y2=\"{}\" stroke=\"#e3e8ee\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" class=\"muted\">{}</text>",
            height - 22.0,
            height - 6.0,
            fmt_duration(jiff::SignedDuration::from_secs_f64(total * q as f64 / 4.0))
        );
    }
    for (i, (p, start, end)) in parsed.iter().enumerate() {
        let y = 2.0 + i as f64 * row_h;
        let x = label_w + bar_w * start.duration_since(t0).as_secs_f64() / total;
        let w = (bar_w * end.duration_since(*start).as_secs_f64() / total).max(2.0);
        let d = fmt_duration(end.duration_since(*start));
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{x:.2}" y="{y}" width="{w:.2}" height="15" fill="{}"><title>{}: {d}</title></rect><text x="{:.2}" y="{}">{d}</text>"#,
            label_w - 8.0,
            y + 12.0,
            esc(&p.phase),
            if p.done { "#1565c0" } else { "#ef6c00" },
            esc(&p.phase),
            (x + w + 5.0).min(label_w + bar_w + 5.0),
            y + 12.0
        );
    }
    s.push_str("</svg>");
    Some(s)
}

fn legend(items: &[(&str, &str)]) -> String {
    let mut s = String::from(r#"<div class="legend">"#);
    for (name, color) in items {
        let _ = write!(
            s,
            r#"<span><i style="background:{color}"></i>{}</span>"#,
            esc(name)
        );
    }
    s.push_str("</div>");
    s
}

fn card(id: &str, n: &str, label: &str) -> String {
    format!(
        r#"<div class="card"><span class="n" id="{}">{}</span><span class="l">{}</span></div>"#,
        esc(id),
        esc(n),
        esc(label)
    )
}

fn opt(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "–".into())
}

/// The whole report as one HTML document.
pub fn render(d: &ReportData) -> String {
    let v = d.verdict();
    let mut h = String::with_capacity(64 * 1024);
    let title = format!(
        "Migration report: {} → {}",
        if d.source_platform.is_empty() {
            "source"
        } else {
            &d.source_platform
        },
        if d.destination_platform.is_empty() {
            "destination"
        } else {
            &d.destination_platform
        }
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    let _ = write!(
        h,
        "<header><h1>{}</h1><p>Generated {} by deskshift. Every figure below is read from the job's stores; the documents it links hold the full lists.</p></header><main>",
        esc(&title),
        esc(&d.generated_at)
    );

    // Summary.
    let class = match v.level {
        Level::Good => "",
        Level::Warn => " warn",
        Level::Bad => " bad",
    };
    let _ = write!(
        h,
        r#"<section class="verdict{class}" id="summary"><h2 id="verdict">{}</h2>"#,
        esc(&v.headline)
    );
    if !v.details.is_empty() {
        h.push_str("<ul>");
        for x in &v.details {
            let _ = write!(h, "<li>{}</li>", esc(x));
        }
        h.push_str("</ul>");
    }
    h.push_str(r#"<div class="cards">"#);
    h.push_str(&card(
        "records-moved",
        &d.records_moved().to_string(),
        "records moved",
    ));
    h.push_str(&card(
        "failed-total",
        &d.failed_total.to_string(),
        "records failed",
    ));
    h.push_str(&card("flags-total", &d.flags_total.to_string(), "flags"));
    h.push_str(&card(
        "duration",
        &d.duration().map(fmt_duration).unwrap_or_else(|| "–".into()),
        "duration",
    ));
    if let Some(val) = &d.validation {
        h.push_str(&card(
            "validation-matched",
            &format!("{} / {}", val.matched, val.checked),
            "validated field by field",
        ));
    }
    h.push_str("</div>");
    if let Some(a) = &d.approval {
        let _ = write!(
            h,
            r#"<p class="muted">Field map approved by {} at {}{}.</p>"#,
            esc(&a.approved_by),
            esc(&a.approved_at),
            if a.automatic {
                " (automatic approval: nobody reviewed the map)"
            } else {
                ""
            }
        );
    }
    h.push_str("</section>");

    // Per-object counts.
    h.push_str(r#"<section id="objects"><h2>Records per object</h2>"#);
    if d.reconciliation.is_empty() {
        h.push_str(r#"<p class="muted">No load has run yet.</p>"#);
    } else {
        let rows: Vec<BarRow<'_>> = d
            .reconciliation
            .iter()
            .map(|r| {
                let k = r.kind.map(|k| k.as_str()).unwrap_or("?");
                let vals = [
                    r.created,
                    r.updated,
                    r.unchanged,
                    r.existing,
                    r.failed,
                    r.excluded,
                ];
                (
                    kind_label(k),
                    SEGMENTS
                        .iter()
                        .zip(vals)
                        .map(|((n, c), v)| (*n, *c, v))
                        .collect(),
                )
            })
            .collect();
        h.push_str(&legend(&SEGMENTS));
        h.push_str(&stacked_bars(&rows));
        h.push_str(r#"<table id="reconciliation"><thead><tr><th>object</th><th class="num">in source</th><th class="num">excluded</th><th class="num">in scope</th><th class="num">created</th><th class="num">updated</th><th class="num">unchanged</th><th class="num">existing</th><th class="num">failed</th><th class="num">in destination (migration)</th><th class="num">destination before</th><th class="num">destination now</th><th>gate</th></tr></thead><tbody>"#);
        for r in &d.reconciliation {
            let k = r.kind.map(|k| k.as_str()).unwrap_or("?");
            let migrated = d.crosswalk.get(k).and_then(|c| c.get("created")).copied();
            let cell = |name: &str, n: u64| {
                format!(r#"<td class="num" id="rec-{}-{name}">{n}</td>"#, esc(k))
            };
            let _ = write!(
                h,
                "<tr><td>{}</td>{}{}{}{}{}{}{}{}<td class=\"num\" id=\"rec-{}-migrated\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&kind_label(k)),
                cell("source", r.source_total),
                cell("excluded", r.excluded),
                cell("in-scope", r.in_scope),
                cell("created", r.created),
                cell("updated", r.updated),
                cell("unchanged", r.unchanged),
                cell("existing", r.existing),
                cell("failed", r.failed),
                esc(k),
                opt(migrated),
                opt(r.destination_before),
                opt(r.destination_now),
                if r.passed {
                    r#"<span class="ok">passed</span>"#.to_string()
                } else {
                    format!(
                        r#"<span class="fail">failed: {}</span>"#,
                        esc(&r.unexplained.join("; "))
                    )
                }
            );
        }
        h.push_str("</tbody></table>");
        for rel in d.reconciliation.iter().filter_map(|r| r.relations.as_ref()) {
            let _ = write!(
                h,
                r#"<p id="relations">Related tickets, {}: {} linked by the last ticket load, {} linked before it, {} waiting for a ticket that is not written, {} refused.</p>"#,
                plural(rel.pairs, "pair", "pairs"),
                rel.linked,
                rel.already,
                rel.unresolved.len(),
                rel.failed.len()
            );
            let rows: Vec<&String> = rel
                .failed
                .iter()
                .chain(&rel.unresolved)
                .take(d.max_rows)
                .collect();
            if !rows.is_empty() {
                h.push_str("<ul>");
                for r in rows {
                    let _ = write!(h, "<li>{}</li>", esc(r));
                }
                h.push_str("</ul>");
            }
        }
    }
    h.push_str("</section>");

    // Failures.
    let _ = write!(
        h,
        r#"<section id="failures"><h2>Failures by reason</h2><p>{} could not move. Each is kept with its payload in <a href="failed-records.csv">failed-records.csv</a>.</p>"#,
        plural(d.failed_total, "record", "records")
    );
    if !d.failures_by_reason.is_empty() {
        let items: Vec<(String, u64)> = d
            .failures_by_reason
            .iter()
            .take(15)
            .map(|(k, r, n)| (format!("{k}: {r}"), *n))
            .collect();
        h.push_str(&bars(&items, "#c62828", "failures by reason"));
        h.push_str(r#"<table><thead><tr><th>object</th><th>reason</th><th class="num">records</th></tr></thead><tbody>"#);
        for (k, r, n) in d.failures_by_reason.iter().take(d.max_rows) {
            let _ = write!(
                h,
                r#"<tr><td>{}</td><td>{}</td><td class="num">{n}</td></tr>"#,
                esc(k),
                esc(r)
            );
        }
        h.push_str("</tbody></table>");
        let _ = write!(h, "<h3>Failed records (first {})</h3>", d.failed.len());
        h.push_str(r#"<table><thead><tr><th>object</th><th>source id</th><th>phase</th><th>error</th></tr></thead><tbody>"#);
        for f in &d.failed {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.kind),
                esc(&f.source_id),
                esc(&f.phase),
                esc(&shorten(&f.error, 300))
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");

    // Flags.
    let _ = write!(
        h,
        r#"<section id="flags"><h2>Flags by code</h2><p>{}: records that moved but need a person's look. All are in <a href="flags.csv">flags.csv</a>.</p>"#,
        plural(d.flags_total, "flag", "flags")
    );
    if !d.flags_by_code.is_empty() {
        let mut per_code: BTreeMap<&str, u64> = BTreeMap::new();
        for (c, _, n, _) in &d.flags_by_code {
            *per_code.entry(c).or_insert(0) += n;
        }
        let mut items: Vec<(String, u64)> = per_code
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect();
        items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        h.push_str(&bars(&items, "#ef6c00", "flags by code"));
        h.push_str(r#"<table><thead><tr><th>code</th><th>object</th><th class="num">records</th><th>example</th></tr></thead><tbody>"#);
        for (c, k, n, ex) in &d.flags_by_code {
            let _ = write!(
                h,
                r#"<tr><td><code>{}</code></td><td>{}</td><td class="num">{n}</td><td>{}</td></tr>"#,
                esc(c),
                esc(k),
                esc(&shorten(ex, 200))
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");

    // Agents.
    h.push_str(r#"<section id="agents"><h2>Agents</h2>"#);
    match &d.agents {
        Some(a) => {
            h.push_str(r#"<div class="cards">"#);
            h.push_str(&card(
                "agents-matched",
                &a.matched.to_string(),
                "matched to an agent",
            ));
            h.push_str(&card(
                "agents-provisioning",
                &a.provisioning_queue.to_string(),
                "provisioning queue",
            ));
            h.push_str(&card(
                "agents-inactive",
                &a.inactive.to_string(),
                "inactive (flagged)",
            ));
            h.push_str("</div>");
            let segs = [
                ("matched", "#2e7d32", a.matched as u64),
                ("provisioning queue", "#ef6c00", a.provisioning_queue as u64),
                ("inactive", "#90a4ae", a.inactive as u64),
            ];
            h.push_str(&legend(
                &segs.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            ));
            h.push_str(&stacked_bars(&[("Users".into(), segs.to_vec())]));
            let todo: Vec<_> = a.agents.iter().filter(|r| r.dest_id.is_none()).collect();
            if !todo.is_empty() {
                h.push_str(r#"<h3>To do before assignments can move</h3><table><thead><tr><th>user</th><th>name</th><th>email</th><th>suggested role</th><th>status</th></tr></thead><tbody>"#);
                for r in todo.iter().take(d.max_rows) {
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(r.username.as_deref().unwrap_or("")),
                        esc(&r.name),
                        esc(r.email.as_deref().unwrap_or("")),
                        esc(&r.suggested_role),
                        esc(&r.status)
                    );
                }
                h.push_str("</tbody></table>");
            }
        }
        None => h.push_str(r#"<p class="muted">The agents phase has not run.</p>"#),
    }
    h.push_str("</section>");

    // Attachments.
    h.push_str(r#"<section id="attachments"><h2>Attachments</h2>"#);
    match &d.attachments {
        Some(a) => {
            h.push_str(r#"<div class="cards">"#);
            h.push_str(&card(
                "attachments-uploaded",
                &(a.uploaded + a.already).to_string(),
                "uploaded",
            ));
            h.push_str(&card(
                "attachments-over-limit",
                &a.over_limit.to_string(),
                "over the size limit",
            ));
            h.push_str(&card("attachments-failed", &a.failed.to_string(), "failed"));
            h.push_str(&card(
                "attachments-md5",
                &a.md5_mismatch_declared.to_string(),
                "wrong declared MD5",
            ));
            h.push_str("</div>");
            let segs = [
                ("uploaded", "#2e7d32", a.uploaded),
                ("already there", "#78909c", a.already),
                ("over the size limit", "#ef6c00", a.over_limit),
                ("failed", "#c62828", a.failed),
            ];
            h.push_str(&legend(
                &segs.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            ));
            h.push_str(&stacked_bars(&[("Files".into(), segs.to_vec())]));
            if !a.problems.is_empty() {
                let _ = write!(
                    h,
                    r#"<h3>Files to look at ({} of {})</h3><table><thead><tr><th>record</th><th>file</th><th class="num">bytes</th><th>reason</th></tr></thead><tbody>"#,
                    a.problems.len().min(d.max_rows),
                    a.problems.len()
                );
                for p in a.problems.iter().take(d.max_rows) {
                    let _ = write!(
                        h,
                        r#"<tr><td>{} {}</td><td>{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                        esc(p.record_kind.as_str()),
                        esc(&p.record_id),
                        esc(&p.file_name),
                        opt(p.size),
                        esc(&p.reason)
                    );
                }
                h.push_str("</tbody></table>");
            }
        }
        None => h.push_str(r#"<p class="muted">The attachments phase has not run.</p>"#),
    }
    h.push_str("</section>");

    // Validation.
    h.push_str(r#"<section id="validation"><h2>Validation</h2>"#);
    match &d.validation {
        Some(val) => {
            let _ = write!(
                h,
                r#"<p>Read back from the destination: <b id="validation-checked">{}</b> records, <b>{}</b> matched field by field, <b>{}</b> field mismatches, <b>{}</b> missing.</p>"#,
                val.checked,
                val.matched,
                val.mismatches.len(),
                val.missing.len()
            );
            if !val.mismatches.is_empty() {
                h.push_str(r#"<table><thead><tr><th>object</th><th>source id</th><th>field</th><th>expected</th><th>found</th></tr></thead><tbody>"#);
                for m in val.mismatches.iter().take(d.max_rows) {
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(m.kind.as_str()),
                        esc(&m.source_id),
                        esc(&m.field),
                        esc(&shorten(&m.expected, 200)),
                        esc(&shorten(&m.found, 200))
                    );
                }
                h.push_str("</tbody></table>");
            }
            if !val.missing.is_empty() {
                h.push_str("<h3>Missing in the destination</h3><ul>");
                for m in val.missing.iter().take(d.max_rows) {
                    let _ = write!(h, "<li>{}</li>", esc(m));
                }
                h.push_str("</ul>");
            }
        }
        None => h.push_str(r#"<p class="muted">Validation has not run.</p>"#),
    }
    h.push_str("</section>");

    // Documentation inventories.
    let inv = &d.inventories;
    h.push_str(r#"<section id="inventories"><h2>Configuration to rebuild</h2><div class="cards">"#);
    h.push_str(&card(
        "inv-workflows",
        &inv.workflows.to_string(),
        "workflows",
    ));
    h.push_str(&card("inv-views", &inv.views.to_string(), "saved views"));
    h.push_str(&card("inv-teams", &inv.teams.to_string(), "groups → teams"));
    if let Some(n) = inv.change_entries {
        h.push_str(&card(
            "inv-history",
            &n.to_string(),
            "change-history entries exported",
        ));
    }
    h.push_str("</div>");
    if !inv.by_equivalent.is_empty() {
        let items: Vec<(String, u64)> = inv
            .by_equivalent
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        h.push_str("<h3>Workflows by recommended equivalent</h3>");
        h.push_str(&bars(
            &items,
            "#5e35b1",
            "workflows by recommended equivalent",
        ));
    }
    h.push_str("</section>");

    // Timeline.
    h.push_str(r#"<section id="timeline"><h2>Timeline of phases</h2>"#);
    if let Some(svg) = gantt(&d.timeline) {
        h.push_str(&svg);
    }
    h.push_str(r#"<table><thead><tr><th>phase</th><th>started</th><th>finished</th><th class="num">took</th><th class="num">destination writes</th></tr></thead><tbody>"#);
    for p in &d.timeline {
        let took = match (
            p.started
                .as_deref()
                .and_then(|s| s.parse::<Timestamp>().ok()),
            p.finished
                .as_deref()
                .and_then(|s| s.parse::<Timestamp>().ok()),
        ) {
            (Some(s), Some(f)) => fmt_duration(f.duration_since(s)),
            _ => "–".into(),
        };
        let _ = write!(
            h,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            esc(&p.phase),
            esc(p.started.as_deref().unwrap_or("–")),
            if p.done {
                esc(p.finished.as_deref().unwrap_or("–"))
            } else {
                r#"<span class="fail">not finished</span>"#.to_string()
            },
            took,
            p.writes
        );
    }
    h.push_str("</tbody></table></section>");

    // Documents.
    h.push_str(r#"<section id="documents"><h2>The migration package</h2><ul class="docs">"#);
    for doc in &d.documents {
        let _ = write!(
            h,
            r#"<li><a href="{}">{}</a>: {}</li>"#,
            esc(&doc.file),
            esc(&doc.title),
            esc(&doc.description)
        );
    }
    h.push_str("</ul></section></main></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use deskshift_core::model::ObjectKind;

    #[test]
    fn record_text_is_escaped_everywhere() {
        let evil = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";
        let d = ReportData {
            source_platform: evil.into(),
            destination_platform: "Zoho Desk".into(),
            reconciliation: vec![Reconciliation {
                kind: Some(ObjectKind::Ticket),
                source_total: 10,
                in_scope: 10,
                created: 9,
                failed: 1,
                passed: true,
                ..Default::default()
            }],
            failed_total: 1,
            failed: vec![FailedRow {
                kind: "ticket".into(),
                source_id: evil.into(),
                phase: "load".into(),
                reason: evil.into(),
                error: evil.into(),
            }],
            failures_by_reason: vec![("ticket".into(), evil.into(), 1)],
            flags_total: 1,
            flags_by_code: vec![(evil.into(), "ticket".into(), 1, evil.into())],
            documents: vec![DocumentLink {
                file: "a\"b.csv".into(),
                title: evil.into(),
                description: evil.into(),
            }],
            timeline: vec![PhaseSpan {
                phase: evil.into(),
                started: Some("2025-01-01T00:00:00Z".into()),
                finished: Some("2025-01-01T00:01:00Z".into()),
                done: true,
                writes: 3,
            }],
            max_rows: 10,
            ..Default::default()
        };
        let html = render(&d);
        assert!(!html.contains("<script"), "no script tag may survive");
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains(r#"id="rec-ticket-created">9<"#));
        assert!(html.contains(r#"id="rec-ticket-failed">1<"#));
        assert_eq!(d.verdict().level, Level::Warn);
    }

    #[test]
    fn verdict_says_incomplete_when_phases_are_missing() {
        let d = ReportData {
            timeline: vec![
                PhaseSpan {
                    phase: "preflight".into(),
                    done: true,
                    finished: Some("2025-01-01T00:00:00Z".into()),
                    ..Default::default()
                },
                PhaseSpan {
                    phase: "load-ticket".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let v = d.verdict();
        assert_eq!(v.level, Level::Warn);
        assert!(v.headline.starts_with("Incomplete"));
        assert!(v.details[0].contains("load-ticket"));
        let html = render(&d);
        assert!(html.contains("No load has run yet"));
    }
}
