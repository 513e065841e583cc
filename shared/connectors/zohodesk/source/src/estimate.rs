//! How many API calls (and, at one credit a call, credits) a full read costs, for pre-flight.
//! The formula follows what [`crate::ZohoDeskSource`] sends; the sandbox test checks it against a
//! measured read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::ZohoSourceConfig;
use crate::records::{
    ACCOUNTS, AGENTS, CONTACTS, CONVERSATIONS, CUSTOM_MODULE_PREFIX, DEPARTMENTS, PRODUCTS, TASKS,
    TICKETS,
};

/// What a tenant holds, as far as the read cost depends on it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadCounts {
    pub departments: u64,
    pub agents: u64,
    pub products: u64,
    pub tags: u64,
    pub accounts: u64,
    pub contacts: u64,
    pub tickets: u64,
    pub tickets_with_threads: u64,
    pub tickets_with_comments: u64,
    pub tickets_with_tags: u64,
    pub tickets_with_attachments: u64,
    pub threads: u64,
    /// Threads whose body is longer than Zoho returns by id (one more `fullContent` call each).
    pub truncated_threads: u64,
    /// First (description) threads among them, read again for ticket links when scanning.
    pub truncated_description_threads: u64,
    pub comments: u64,
    pub tasks: u64,
    /// Records per custom module.
    pub custom_module_records: Vec<u64>,
    /// Attachment and inline-image files to download.
    pub attachments: u64,
}

impl ReadCounts {
    /// Counts from records per collection (what pre-flight counts). Conversations are taken as
    /// threads (the dearer kind) and every ticket as having threads, comments, tags and
    /// attachments, so the estimate errs high.
    pub fn from_collections(counts: &BTreeMap<String, u64>, attachments: u64) -> ReadCounts {
        let get = |k: &str| counts.get(k).copied().unwrap_or(0);
        let tickets = get(TICKETS);
        ReadCounts {
            departments: get(DEPARTMENTS),
            agents: get(AGENTS),
            products: get(PRODUCTS),
            tags: 0,
            accounts: get(ACCOUNTS),
            contacts: get(CONTACTS),
            tickets,
            tickets_with_threads: tickets,
            tickets_with_comments: tickets,
            tickets_with_tags: tickets,
            tickets_with_attachments: tickets,
            threads: get(CONVERSATIONS),
            truncated_threads: 0,
            truncated_description_threads: 0,
            comments: 0,
            tasks: get(TASKS),
            custom_module_records: counts
                .iter()
                .filter(|(k, _)| k.starts_with(CUSTOM_MODULE_PREFIX))
                .map(|(_, v)| *v)
                .collect(),
            attachments,
        }
    }
}

/// Calls until a page comes back short (a 204 when `n` is a multiple of `size`).
fn pages(n: u64, size: u32) -> u64 {
    n / u64::from(size.max(1)) + 1
}

/// Calls of one discovery plus one full read of every collection and every attachment download,
/// with the default page sizes. Token grants are not counted (they cost no credits).
pub fn estimate_calls(counts: &ReadCounts) -> u64 {
    estimate_calls_with(counts, &ZohoSourceConfig::defaults())
}

/// [`estimate_calls`] with a configuration's page sizes and options.
pub fn estimate_calls_with(c: &ReadCounts, cfg: &ZohoSourceConfig) -> u64 {
    let modules = c.custom_module_records.len() as u64;
    let metadata = pages(c.departments, 200)
        + pages(c.agents, 200)
        + pages(c.products, 100)
        + pages(c.tags, 100);
    // /fields for 5 modules, a one-record probe of 5 collections, /organizationModules, and
    // /fields plus a probe per custom module.
    let discover = metadata + 5 + 5 + 1 + 2 * modules;
    let scan = if cfg.scan_description_thread {
        2 * c.tickets_with_threads + c.truncated_description_threads
    } else {
        0
    };
    let read = pages(c.departments, 200)
        + pages(c.agents, 200)
        + pages(c.accounts, cfg.record_page_size)
        + c.accounts
        + pages(c.contacts, cfg.record_page_size)
        + c.contacts
        + pages(c.products, 100)
        + c.products
        + pages(c.tickets, cfg.ticket_page_size)
        + c.tickets
        + c.tickets_with_tags
        + c.tickets_with_attachments
        + scan
        + pages(c.tickets, cfg.conversation_tickets_per_page)
        + c.tickets_with_threads
        + c.tickets_with_comments
        + c.threads
        + c.truncated_threads
        + pages(c.tasks, cfg.record_page_size)
        + c.custom_module_records
            .iter()
            .map(|n| pages(*n, cfg.record_page_size))
            .sum::<u64>();
    discover + read + c.attachments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_dominate_and_scale_linearly() {
        let small = ReadCounts {
            tickets: 100,
            tickets_with_threads: 100,
            threads: 300,
            ..Default::default()
        };
        let big = ReadCounts {
            tickets: 1000,
            tickets_with_threads: 1000,
            threads: 3000,
            ..Default::default()
        };
        let (a, b) = (estimate_calls(&small), estimate_calls(&big));
        assert!(b > 9 * (a - 40) && b < 11 * a, "{a} {b}");
        let mut no_scan = ZohoSourceConfig::defaults();
        no_scan.scan_description_thread = false;
        assert_eq!(estimate_calls_with(&big, &no_scan) + 2000, b);
    }
}
