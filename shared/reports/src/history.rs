//! The change-history export (opt-in, by date range): one JSON line per field change of the source's
//! audit trail, with the record, field, old and new value, who and when (UTC).

use std::io::Write;

use deskshift_core::mapping::FieldMap;
use deskshift_core::model::{FieldType, ObjectKind, RawRecord};
use deskshift_core::util::local_to_utc;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::fields::{Resolved, Role, role};

const ROLES: &[Role] = &[
    role(
        "record_tab",
        &[
            "recordtab",
            "module",
            "tab",
            "object",
            "recordtype",
            "entity",
            "collection",
        ],
    ),
    role(
        "record_id",
        &["recordid", "record", "itemid", "objectid", "entityid", "id"],
    ),
    role(
        "field",
        &[
            "field",
            "fieldname",
            "changedfield",
            "attribute",
            "property",
        ],
    ),
    role(
        "old",
        &[
            "oldvalue",
            "previousvalue",
            "fromvalue",
            "old",
            "from",
            "before",
            "valuebefore",
        ],
    ),
    role(
        "new",
        &[
            "newvalue",
            "tovalue",
            "changedto",
            "new",
            "to",
            "after",
            "valueafter",
        ],
    ),
    Role {
        name: "who",
        synonyms: &[
            "changedby",
            "modifiedbyuser",
            "user",
            "who",
            "author",
            "editedby",
            "actor",
        ],
        fallback: &["createdby"],
    },
    role(
        "when",
        &[
            "changedat",
            "changedate",
            "timestamp",
            "when",
            "changedon",
            "changetime",
            "date",
            "time",
        ],
    ),
];

/// An inclusive UTC range; an open end is unbounded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DateRange {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl DateRange {
    /// Parses `from` / `to` as RFC 3339 instants or dates; a date alone means the whole day (UTC),
    /// so `--to 2025-03-31` includes changes made on the 31st.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> anyhow::Result<DateRange> {
        let one = |s: &str, end: bool| -> anyhow::Result<Timestamp> {
            let s = s.trim();
            if let Ok(ts) = s.parse::<Timestamp>() {
                return Ok(ts);
            }
            let date: jiff::civil::Date = s.parse().map_err(|_| {
                anyhow::anyhow!(
                    "change-history range: {s:?} is neither a date (2025-03-31) nor a UTC time (2025-03-31T12:00:00Z)"
                )
            })?;
            let start = date.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp();
            Ok(if end {
                date.tomorrow()?
                    .to_zoned(jiff::tz::TimeZone::UTC)?
                    .timestamp()
                    - jiff::SignedDuration::from_nanos(1)
            } else {
                start
            })
        };
        let range = DateRange {
            from: from.map(|f| one(f, false)).transpose()?,
            to: to.map(|t| one(t, true)).transpose()?,
        };
        if let (Some(f), Some(t)) = (range.from, range.to)
            && f > t
        {
            anyhow::bail!("change-history range: from {f} is after to {t}; swap them");
        }
        Ok(range)
    }

    pub fn contains(&self, ts: Timestamp) -> bool {
        self.from.is_none_or(|f| ts >= f) && self.to.is_none_or(|t| ts <= t)
    }
}

/// One field change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeEntry {
    pub record_id: String,
    pub tab: String,
    pub field: String,
    pub old: String,
    pub new: String,
    pub who: String,
    /// UTC, ISO-8601.
    pub when: String,
    /// The change-history entry's own id in the source.
    pub entry_id: String,
    /// The changed record's id in the destination, when it was migrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_id: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChangeHistoryExport {
    pub source_collection: Option<String>,
    pub range: DateRange,
    pub read_from: Vec<(String, String)>,
    pub entries: Vec<ChangeEntry>,
    /// Entries in the source, in the range or not.
    pub total_in_source: u64,
    /// Entries whose time could not be read: never exported by a bounded range.
    pub undated: Vec<String>,
}

/// The source's change entries inside `range`, oldest first; times are read in the source's zone
/// when they carry no offset.
pub fn change_history(
    map: &FieldMap,
    records: &[RawRecord],
    zone: Option<&jiff::tz::TimeZone>,
    range: &DateRange,
) -> ChangeHistoryExport {
    let mut out = ChangeHistoryExport {
        range: range.clone(),
        total_in_source: records.len() as u64,
        ..Default::default()
    };
    let Some(cm) = map.for_kind(ObjectKind::ChangeHistory) else {
        return out;
    };
    out.source_collection = Some(cm.collection.clone());
    let f = Resolved::new(cm, ROLES);
    out.read_from = f.sources();
    if f.field("when").is_none() {
        out.read_from
            .push(("when".into(), "(the entry's creation time)".into()));
    }
    let mut rows: Vec<(Timestamp, ChangeEntry)> = Vec::new();
    for raw in records {
        let when = match f.value(raw, "when") {
            Some(v) => instant(v, f.field_type("when"), zone),
            None => raw.created_at.as_deref().and_then(|s| s.parse().ok()),
        };
        let Some(when) = when else {
            out.undated.push(raw.id.clone());
            continue;
        };
        if !range.contains(when) {
            continue;
        }
        rows.push((
            when,
            ChangeEntry {
                record_id: f.text(raw, "record_id"),
                tab: f.text(raw, "record_tab"),
                field: f.text(raw, "field"),
                old: f.text(raw, "old"),
                new: f.text(raw, "new"),
                who: f.text(raw, "who"),
                when: when.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                entry_id: raw.id.clone(),
                destination_id: None,
            },
        ));
    }
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| numeric_order(&a.1.entry_id, &b.1.entry_id))
    });
    out.entries = rows.into_iter().map(|(_, e)| e).collect();
    out
}

fn numeric_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// A stamp as an instant: RFC 3339 as is, zone-less local times in the source's zone, numbers as
/// Unix seconds.
fn instant(
    v: &serde_json::Value,
    ty: Option<&FieldType>,
    zone: Option<&jiff::tz::TimeZone>,
) -> Option<Timestamp> {
    match v {
        serde_json::Value::Number(n) => Timestamp::from_second(n.as_i64()?).ok(),
        serde_json::Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            if let Ok(ts) = s.parse::<Timestamp>() {
                return Some(ts);
            }
            if let Ok(secs) = s.parse::<i64>()
                && !matches!(ty, Some(FieldType::Date))
            {
                return Timestamp::from_second(secs).ok();
            }
            let local = if s.len() == 10 {
                format!("{s} 00:00:00")
            } else {
                s.to_string()
            };
            match zone {
                Some(z) => local_to_utc(&local, z)?.parse().ok(),
                None => local_to_utc(&local, &jiff::tz::TimeZone::UTC)?.parse().ok(),
            }
        }
        _ => None,
    }
}

/// Writes the entries as JSON lines.
pub fn write_jsonl(entries: &[ChangeEntry], w: &mut impl Write) -> std::io::Result<()> {
    for e in entries {
        serde_json::to_writer(&mut *w, e)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::tests::{collection, field, raw};

    #[test]
    fn exports_exactly_the_range_in_utc() {
        let map = FieldMap {
            source_platform: "Ivinex".into(),
            destination_platform: "Zoho Desk".into(),
            collections: vec![collection(
                "Audit Trail",
                ObjectKind::ChangeHistory,
                vec![
                    field("module", "Module", None),
                    field("item_id", "Item ID", None),
                    field("changed_field", "Changed Field", None),
                    field("from_value", "From Value", None),
                    field("to_value", "To Value", None),
                    field("user", "User", None),
                    {
                        let mut f = field("timestamp", "Timestamp", None);
                        f.source_type = FieldType::Datetime;
                        f
                    },
                ],
            )],
        };
        let rec = |id: &str, at: &str| {
            raw(
                "Audit Trail",
                id,
                &[
                    ("module", "Tickets"),
                    ("item_id", "7"),
                    ("changed_field", "status"),
                    ("from_value", "Open"),
                    ("to_value", "Closed"),
                    ("user", "ann"),
                    ("timestamp", at),
                ],
            )
        };
        let recs = vec![
            rec("3", "2025-03-01 09:00:00"),
            rec("1", "2025-02-28 18:59:59"),
            rec("2", "2025-02-28 19:00:00"),
            rec("4", "not a time"),
        ];
        let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let range = DateRange::parse(Some("2025-03-01"), Some("2025-03-01")).unwrap();
        let out = change_history(&map, &recs, Some(&ny), &range);
        let ids: Vec<&str> = out.entries.iter().map(|e| e.entry_id.as_str()).collect();
        // 19:00 New York on the 28th is midnight UTC on the 1st; 18:59:59 is the day before.
        assert_eq!(ids, vec!["2", "3"]);
        assert_eq!(out.entries[0].when, "2025-03-01T00:00:00Z");
        assert_eq!(out.entries[0].who, "ann");
        assert_eq!(out.entries[0].old, "Open");
        assert_eq!(out.undated, vec!["4"]);
        let mut buf = Vec::new();
        write_jsonl(&out.entries, &mut buf).unwrap();
        assert_eq!(String::from_utf8(buf).unwrap().lines().count(), 2);
        assert!(DateRange::parse(Some("2025-03-02"), Some("2025-03-01")).is_err());
        assert!(DateRange::parse(Some("yesterday"), None).is_err());
    }
}
