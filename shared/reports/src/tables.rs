//! The failed-records and flags CSVs (the same columns `deskshift` has always written, so tools
//! reading them keep working).

use std::io::Write;

use deskshift_core::model::Flag;
use deskshift_core::phases::FailedRecord;

pub fn write_failed_csv(failed: &[FailedRecord], w: impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(w);
    w.write_record([
        "kind",
        "source_id",
        "phase",
        "reason",
        "error",
        "at",
        "payload",
    ])?;
    for f in failed {
        w.write_record([
            f.kind.as_str(),
            &f.source_id,
            &f.phase,
            &f.reason,
            &f.error,
            &f.at,
            &f.payload.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

pub fn write_flags_csv(flags: &[Flag], w: impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(w);
    w.write_record(["kind", "source_id", "code", "message"])?;
    for f in flags {
        w.write_record([f.kind.as_str(), &f.source_id, &f.code, &f.message])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use deskshift_core::model::ObjectKind;

    #[test]
    fn csv_quotes_commas_and_newlines() {
        let flags = vec![Flag {
            kind: ObjectKind::Ticket,
            source_id: "7".into(),
            code: "cc_list".into(),
            message: "a, b\nc \"d\"".into(),
        }];
        let mut buf = Vec::new();
        write_flags_csv(&flags, &mut buf).unwrap();
        let mut r = csv::Reader::from_reader(buf.as_slice());
        let row = r.records().next().unwrap().unwrap();
        assert_eq!(&row[3], "a, b\nc \"d\"");
    }
}
