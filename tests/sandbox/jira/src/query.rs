//! Query strings, parsed by hand so repeated keys (`contextId=1&contextId=2`) and Jira's own
//! error wording both work.

use axum::http::{StatusCode, Uri};
use axum::response::Response;

pub struct Q {
    pairs: Vec<(String, String)>,
    jsm: bool,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Q {
    pub fn parse(uri: &Uri, jsm: bool) -> Q {
        let pairs = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Q { pairs, jsm }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable, comma-separable parameter.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn invalid(&self, key: &str, value: &str, what: &str) -> Response {
        let msg = format!("The value '{value}' of query parameter '{key}' is not {what}.");
        if self.jsm {
            crate::error::jsm(StatusCode::BAD_REQUEST, &msg)
        } else {
            crate::error::platform(StatusCode::BAD_REQUEST, &[&msg])
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, Response> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(self.invalid(key, v, "a boolean")),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, Response> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.invalid(key, v, "an integer")),
        }
    }

    /// An offset/limit pair with bounds, e.g. (`startAt`, `maxResults`).
    pub fn page(
        &self,
        start_key: &str,
        limit_key: &str,
        default_limit: usize,
        max_limit: usize,
    ) -> Result<(usize, usize), Response> {
        let start = self.int(start_key)?.unwrap_or(0).max(0) as usize;
        let limit = self
            .int(limit_key)?
            .map(|l| l.max(0) as usize)
            .unwrap_or(default_limit)
            .min(max_limit);
        Ok((start, limit))
    }

    pub fn has(&self, key: &str, value: &str) -> bool {
        self.list(key).iter().any(|v| v == value)
    }
}
