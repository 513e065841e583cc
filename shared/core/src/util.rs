//! Small shared helpers: hashing and time.

use md5::Md5;
use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Reads the time formats sources and destinations use: ISO-8601 with an offset, zone-less ISO
/// (taken as UTC), a bare date (midnight UTC), or epoch milliseconds.
pub fn parse_instant(s: &str) -> Option<jiff::Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    if s.len() >= 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
    }
    if let Ok(dt) = s.replace(' ', "T").parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    None
}

/// Now, UTC, ISO-8601 with milliseconds.
pub fn now_iso() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Converts a zone-less local time (`YYYY-MM-DD HH:MM:SS`) in `zone` to UTC ISO-8601 with
/// milliseconds. Times in a DST gap move forward, times in a fold take the earlier instant.
pub fn local_to_utc(local: &str, zone: &jiff::tz::TimeZone) -> Option<String> {
    let dt: jiff::civil::DateTime = local.trim().replace(' ', "T").parse().ok()?;
    let ts = zone.to_ambiguous_timestamp(dt).compatible().ok()?;
    Some(ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// The inverse of [`local_to_utc`]: a UTC instant as zone-less local time in `zone`.
pub fn utc_to_local(utc: &str, zone: &jiff::tz::TimeZone) -> Option<String> {
    let ts: jiff::Timestamp = utc.parse().ok()?;
    Some(
        ts.to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_round_trips_through_utc() {
        let tz = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let utc = local_to_utc("2025-01-15 09:30:00", &tz).unwrap();
        assert_eq!(utc, "2025-01-15T14:30:00.000Z");
        assert_eq!(utc_to_local(&utc, &tz).unwrap(), "2025-01-15 09:30:00");
        // 02:30 does not exist on 2025-03-09 in New York: it moves forward an hour.
        assert_eq!(
            local_to_utc("2025-03-09 02:30:00", &tz).unwrap(),
            "2025-03-09T07:30:00.000Z"
        );
    }
}

/// A credential: printed and serialized as `***`, readable only through [`Secret::expose`]; it is
/// read from the environment, a file or a secret store, never from saved configuration.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Checks that `url` may be fetched: http(s), and on exactly one of `allowed` (host and port as
/// configured). Anything else, including private or link-local addresses that are not the
/// configured host, is refused: attachment URLs come from record data and must not reach
/// internal services.
pub fn check_fetch_url(url: &str, allowed: &[reqwest::Url]) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a valid URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme {} is not http(s)", parsed.scheme()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("URL carries credentials".to_string());
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let ok = allowed.iter().any(|a| {
        a.scheme() == parsed.scheme()
            && a.host_str().map(|h| h.to_ascii_lowercase()) == Some(host.clone())
            && a.port_or_known_default() == parsed.port_or_known_default()
    });
    if ok {
        Ok(parsed)
    } else {
        Err(format!(
            "host {host} is not one of the source's configured hosts"
        ))
    }
}

#[cfg(test)]
mod fetch_tests {
    use super::*;

    #[test]
    fn only_configured_hosts_are_fetched() {
        let allowed = vec![reqwest::Url::parse("https://acme.ivinex.com").unwrap()];
        assert!(check_fetch_url("https://acme.ivinex.com/files/1/a.png", &allowed).is_ok());
        for bad in [
            "http://169.254.169.254/latest/meta-data",
            "https://acme.ivinex.com.evil.net/x",
            "http://acme.ivinex.com/x",
            "https://127.0.0.1/x",
            "https://user:pw@acme.ivinex.com/x",
            "file:///etc/passwd",
            "cid:image001.png",
        ] {
            assert!(
                check_fetch_url(bad, &allowed).is_err(),
                "{bad} must be refused"
            );
        }
        assert!(format!("{:?}", Secret::new("hunter2")) == "***");
    }
}
