//! Read positions, serialised into the engine's opaque cursor string.
//!
//! A full read pages with `from`. A delta read searches `modifiedTimeRange` windows sorted by
//! `modifiedTime`: a window whose search count is beyond what `from` reaches (999) is bisected by
//! time before it is read, and inside a window the position moves by time (keyset: the window
//! starts at the last stamp read, skipping the ids already read at that stamp), so records that
//! change while the read runs cannot shift unread ones out of reach.

use deskshift_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::config::SEARCH_REACH;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// Offset of the next list page (full reads, and descending-by-time deltas).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub from: u64,
    /// Delta search windows still to read; the last one is read first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Inclusive bounds in epoch milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Window {
    pub start: i64,
    pub end: i64,
    #[serde(default)]
    pub from: u64,
    /// Ids already read whose stamp equals `start`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// Whether its size was checked (a window is bisected only before it is read).
    #[serde(default)]
    pub probed: bool,
}

impl Window {
    pub fn new(start: i64, end: i64) -> Window {
        Window {
            start,
            end,
            from: 0,
            skip: vec![],
            probed: false,
        }
    }
}

impl Cursor {
    pub fn parse(s: Option<&str>) -> Result<Cursor> {
        match s {
            None => Ok(Cursor::default()),
            Some(t) => serde_json::from_str(t).map_err(|e| {
                Error::Config(format!(
                    "the saved Zoho Desk read position is not one this version wrote ({e}); \
                     clear the phase's checkpoint and read the collection again"
                ))
            }),
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("cursor serialises")
    }
}

/// What to do with the answer to the current window's search.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// The window holds more than `from` reaches: it was split; search again.
    Split,
    /// Emit these ids (positions in the page); the window moved on or finished.
    Emit(Vec<usize>),
}

/// Advances `windows` past one search page of (id, stamp in ms) in ascending stamp order.
/// `count` is the search's total for the window when Zoho gives it.
pub(crate) fn advance(
    windows: &mut Vec<Window>,
    page: &[(String, i64)],
    count: Option<u64>,
    limit: usize,
) -> Result<Step> {
    let w = windows.last_mut().expect("a window to advance");
    if !w.probed {
        w.probed = true;
        if count.is_some_and(|c| c > SEARCH_REACH) && w.end > w.start {
            let mid = w.start + (w.end - w.start) / 2;
            let (start, end) = (w.start, w.end);
            windows.pop();
            windows.push(Window::new(mid + 1, end));
            windows.push(Window::new(start, mid));
            return Ok(Step::Split);
        }
    }
    let fresh: Vec<usize> = page
        .iter()
        .enumerate()
        .filter(|(_, (id, at))| !(*at <= w.start && w.skip.contains(id)))
        .map(|(i, _)| i)
        .collect();
    if page.len() < limit {
        windows.pop();
        return Ok(Step::Emit(fresh));
    }
    let last = page.iter().map(|(_, at)| *at).max().unwrap_or(w.start);
    let at_last: Vec<String> = page
        .iter()
        .filter(|(_, at)| *at == last)
        .map(|(id, _)| id.clone())
        .collect();
    if last > w.start {
        w.start = last;
        w.skip = at_last;
        w.from = 0;
    } else {
        // A whole page shares one stamp: only the offset can move on.
        for id in at_last {
            if !w.skip.contains(&id) {
                w.skip.push(id);
            }
        }
        w.from += page.len() as u64;
        if w.from >= SEARCH_REACH {
            return Err(Error::Api {
                platform: crate::client::PLATFORM.into(),
                endpoint: "GET search".into(),
                status: 200,
                message: format!(
                    "more than {SEARCH_REACH} records carry the same modifiedTime, which Zoho's search cannot page \
                     past; run a full read of this collection instead of a delta"
                ),
            });
        }
    }
    Ok(Step::Emit(fresh))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(items: &[(&str, i64)]) -> Vec<(String, i64)> {
        items.iter().map(|(i, t)| (i.to_string(), *t)).collect()
    }

    #[test]
    fn a_window_beyond_reach_is_bisected_before_it_is_read() {
        let mut w = vec![Window::new(0, 1000)];
        let step = advance(&mut w, &page(&[("a", 1)]), Some(1500), 1).unwrap();
        assert_eq!(step, Step::Split);
        assert_eq!(w, vec![Window::new(501, 1000), Window::new(0, 500)]);
        // The first half fits: it is read, not split again.
        let step = advance(&mut w, &page(&[("a", 1)]), Some(700), 2).unwrap();
        assert_eq!(step, Step::Emit(vec![0]));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn the_position_moves_by_time_and_skips_what_was_read_at_the_same_stamp() {
        let mut w = vec![Window::new(0, 100)];
        let step = advance(&mut w, &page(&[("a", 5), ("b", 7), ("c", 7)]), Some(5), 3).unwrap();
        assert_eq!(step, Step::Emit(vec![0, 1, 2]));
        assert_eq!((w[0].start, w[0].from), (7, 0));
        assert_eq!(w[0].skip, vec!["b", "c"]);
        // The next search starts at 7 and returns b and c again first: only d is new.
        let step = advance(&mut w, &page(&[("b", 7), ("c", 7), ("d", 9)]), Some(3), 3).unwrap();
        assert_eq!(step, Step::Emit(vec![2]));
        let step = advance(&mut w, &page(&[("d", 9)]), Some(1), 3).unwrap();
        assert_eq!(step, Step::Emit(vec![]));
        assert!(w.is_empty(), "a short page ends the window");
    }

    #[test]
    fn a_page_of_one_stamp_moves_by_offset() {
        let mut w = vec![Window::new(7, 100)];
        let step = advance(&mut w, &page(&[("a", 7), ("b", 7)]), None, 2).unwrap();
        assert_eq!(step, Step::Emit(vec![0, 1]));
        assert_eq!((w[0].start, w[0].from), (7, 2));
        let c = Cursor {
            from: 0,
            windows: w.clone(),
        };
        assert_eq!(Cursor::parse(Some(&c.encode())).unwrap(), c);
        assert!(Cursor::parse(Some("not json")).is_err());
    }
}
