//! A deterministic Zoho Desk *source* tenant: the same (seed, tickets) always gives the same records.
//!
//! It holds what a Zoho -> JSM migration must cope with: several departments, custom fields (one
//! department-scoped), tags, categories, products, accounts with names over 200 characters, one
//! email shared by contacts of different accounts, public and private threads, bodies long enough
//! to be truncated, HTML with inline images served by this server, comments, attachments, tasks,
//! and tickets that point at tickets of another department.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::api_core::{new_account, new_contact, new_product, web_url};
use crate::api_tickets::new_task;
use crate::api_tickets::new_ticket;
use crate::inspect::thread_defaults;
use crate::model::*;

/// Generated records, ready to load; thread bodies and hrefs carry a `{base}` placeholder for the server URL.
#[derive(Clone, Debug, Default)]
pub struct ZohoTenant {
    pub departments: Vec<Rec>,
    pub agents: Vec<Rec>,
    pub fields: Vec<Rec>,
    pub tags: Vec<Rec>,
    pub products: Vec<Rec>,
    pub accounts: Vec<Rec>,
    pub contacts: Vec<Rec>,
    pub tickets: Vec<Rec>,
    pub threads: Vec<Rec>,
    pub comments: Vec<Rec>,
    pub tasks: Vec<Rec>,
    /// (metadata, bytes) of ticket and thread attachments.
    pub attachments: Vec<(Rec, Vec<u8>)>,
    pub next_ticket_number: u64,
}

impl ZohoTenant {
    pub fn summary(&self) -> Value {
        json!({
            "departments": self.departments.len(), "agents": self.agents.len(), "fields": self.fields.len(),
            "tags": self.tags.len(), "products": self.products.len(), "accounts": self.accounts.len(),
            "contacts": self.contacts.len(), "tickets": self.tickets.len(), "threads": self.threads.len(),
            "comments": self.comments.len(), "tasks": self.tasks.len(), "attachments": self.attachments.len(),
        })
    }
}

const GEN_ID_BASE: u64 = 4_000_000_000_000_000;
const FIRST: &[&str] = &[
    "Ava", "Liam", "Noah", "Mia", "Zoe", "Omar", "Priya", "Chen", "Lucas", "Sofia", "Kenji",
    "Amara", "Ivan", "Leila",
];
const LAST: &[&str] = &[
    "Smith", "Garcia", "Okafor", "Nguyen", "Rossi", "Kowalski", "Haddad", "Tanaka", "Silva",
    "Jensen", "Moreau", "Patel",
];
const COMPANIES: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
];
const CATEGORIES: &[(&str, &[&str])] = &[
    ("Hardware", &["Laptop", "Printer", "Monitor"]),
    ("Software", &["Install", "License", "Crash"]),
    ("Billing", &["Refund", "Invoice"]),
];
const TAGS: &[&str] = &[
    "vip",
    "urgent",
    "follow-up",
    "bug",
    "feature-request",
    "renewal",
    "escalated",
    "duplicate",
];
const STATUSES: &[&str] = &[
    "Open",
    "Open",
    "On Hold",
    "Escalated",
    "Closed",
    "Closed",
    "Closed",
];
const PRIORITIES: &[&str] = &["High", "Medium", "Low"];
const CHANNELS: &[&str] = &["Email", "Phone", "Web", "Chat", "Forums"];
/// Options of the multi-select custom field.
const MODULES: &[&str] = &["Login", "Reports", "Billing", "API"];
/// A 1x1 PNG: the start of every inline image (each gets its own trailing bytes, so each is told
/// apart by its checksum).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// (module, label, type, allowed values, max length, scoped departments)
type FieldSpec = (
    &'static str,
    &'static str,
    &'static str,
    Vec<String>,
    Option<u64>,
    Vec<String>,
);

struct Gen {
    next: u64,
    rng: ChaCha8Rng,
    epoch: jiff::Timestamp,
}

impl Gen {
    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
    fn pick<'a, T>(&mut self, list: &'a [T]) -> &'a T {
        &list[self.rng.random_range(0..list.len())]
    }
    /// A time `minutes` after the tenant's epoch.
    fn at(&self, minutes: i64) -> String {
        iso(self.epoch + jiff::SignedDuration::from_mins(minutes))
    }
}

/// An image file of `PNG` followed by `extra` seeded bytes (after IEND, which viewers ignore).
fn image_bytes(g: &mut Gen, extra: usize) -> Vec<u8> {
    let mut out = PNG.to_vec();
    out.extend((0..extra).map(|_| g.rng.random::<u8>()));
    out
}

fn obj(v: Value) -> Rec {
    v.as_object().cloned().unwrap_or_default()
}

fn sentence(g: &mut Gen, words: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "device",
        "stopped",
        "working",
        "after",
        "update",
        "please",
        "advise",
        "invoice",
        "missing",
        "error",
        "screen",
        "login",
        "fails",
        "since",
        "yesterday",
        "customer",
        "reports",
        "slow",
        "network",
        "printer",
        "jammed",
        "license",
        "expired",
        "refund",
        "requested",
    ];
    (0..words)
        .map(|_| *g.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn generate(seed: u64, tickets: usize) -> ZohoTenant {
    let mut g = Gen {
        next: GEN_ID_BASE,
        rng: ChaCha8Rng::seed_from_u64(seed),
        epoch: jiff::Timestamp::from_second(1_704_067_200).unwrap_or_default(),
    };
    let mut t = ZohoTenant::default();

    // Departments
    let dept_names = ["Support", "Billing", "Engineering"];
    let dept_ids: Vec<u64> = dept_names.iter().map(|_| g.id()).collect();
    let dept_strs: Vec<String> = dept_ids.iter().map(u64::to_string).collect();

    // Agents: the first is the admin; the last one is disabled (its assignments cannot move).
    let agent_count = (4 + tickets / 250).min(30);
    let mut agent_ids = Vec::new();
    for n in 0..agent_count {
        let id = g.id();
        let first = FIRST[n % FIRST.len()];
        let last = LAST[(n * 7) % LAST.len()];
        let role = if n == 0 {
            "Admin"
        } else if n % 5 == 4 {
            "Light"
        } else {
            "AgentPublic"
        };
        let deps: Vec<String> = if n == 0 {
            dept_strs.clone()
        } else {
            vec![dept_strs[n % dept_strs.len()].clone()]
        };
        let email = format!(
            "{}.{}{}@desk.example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            n
        );
        let mut a = agent(id, first, last, &email, role, &deps);
        if n == agent_count - 1 && n > 0 {
            a.insert("status".into(), json!("DISABLED"));
        }
        agent_ids.push(id.to_string());
        t.agents.push(a);
    }
    for (i, id) in dept_ids.iter().enumerate() {
        let members: Vec<String> = t
            .agents
            .iter()
            .filter(|a| {
                a.get("associatedDepartmentIds")
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.iter().any(|x| x.as_str() == Some(&dept_strs[i])))
            })
            .filter_map(|a| s(a, "id"))
            .collect();
        t.departments
            .push(department(*id, dept_names[i], i == 0, &members, &g.at(0)));
    }

    // Custom fields
    let severity: Vec<String> = ["S1", "S2", "S3", "S4"]
        .iter()
        .map(|v| v.to_string())
        .collect();
    let tiers: Vec<String> = ["Gold", "Silver", "Bronze"]
        .iter()
        .map(|v| v.to_string())
        .collect();
    let regions: Vec<String> = ["EMEA", "APAC", "AMER"]
        .iter()
        .map(|v| v.to_string())
        .collect();
    let field_specs: Vec<FieldSpec> = vec![
        (
            "tickets",
            "Legacy Reference",
            "Text",
            vec![],
            Some(100),
            vec![],
        ),
        (
            "tickets",
            "Severity",
            "Picklist",
            severity.clone(),
            None,
            vec![],
        ),
        (
            "tickets",
            "Region",
            "Picklist",
            regions.clone(),
            None,
            vec![dept_strs[2].clone()],
        ),
        ("tickets", "Renewal Date", "Date", vec![], None, vec![]),
        ("tickets", "Seats", "Number", vec![], None, vec![]),
        ("tickets", "Under Contract", "Boolean", vec![], None, vec![]),
        (
            "tickets",
            "Affected Modules",
            "Multiselect",
            MODULES.iter().map(|v| v.to_string()).collect(),
            None,
            vec![],
        ),
        (
            "contacts",
            "Customer Tier",
            "Picklist",
            tiers.clone(),
            None,
            vec![],
        ),
        ("accounts", "Account Code", "Text", vec![], Some(50), vec![]),
    ];
    for (module, label, ftype, allowed, max, deps) in field_specs {
        let id = g.id();
        let mut f = field_record(
            id,
            module,
            &cf_api_name(label),
            label,
            ftype,
            &allowed,
            true,
            max,
            &deps,
        );
        f.insert("createdTime".into(), json!(g.at(5)));
        t.fields.push(f);
    }

    // Tags and products
    let mut tag_ids = Vec::new();
    for name in TAGS {
        let id = g.id();
        tag_ids.push(id.to_string());
        t.tags.push(obj(
            json!({"id": id.to_string(), "name": name, "createdTime": g.at(10)}),
        ));
    }
    let mut product_ids = Vec::new();
    for (n, name) in [
        "Laptop Pro",
        "Office Suite",
        "Cloud Backup",
        "Printer X2",
        "Router AX",
        "Support Plan",
    ]
    .iter()
    .enumerate()
    {
        let id = g.id();
        let deps = vec![dept_strs[n % 2].clone(), dept_strs[2].clone()];
        let mut p = new_product(id, name, &deps, &g.at(15), Some(agent_ids[0].clone()));
        p.insert("productCode".into(), json!(format!("P-{:03}", n + 1)));
        p.insert("unitPrice".into(), json!(format!("{}.0", 50 * (n + 1))));
        product_ids.push(id.to_string());
        t.products.push(p);
    }

    // Accounts; every 7th has a name beyond JSM's 200-character organization limit.
    let account_count = (tickets / 10).max(3);
    let mut account_ids = Vec::new();
    for n in 0..account_count {
        let id = g.id();
        let base_name = format!(
            "{} {} {}",
            COMPANIES[n % COMPANIES.len()],
            LAST[n % LAST.len()],
            n
        );
        let name = if n % 7 == 3 {
            format!(
                "{base_name} {}",
                "Holdings International Subsidiary Group ".repeat(6)
            )
            .trim()
            .to_string()
        } else {
            base_name
        };
        let mut a = new_account(id, &name, &g.at(20 + n as i64), Some(agent_ids[0].clone()));
        a.insert(
            "website".into(),
            json!(format!(
                "https://www.{}{}.example.com",
                COMPANIES[n % COMPANIES.len()].to_lowercase(),
                n
            )),
        );
        a.insert("phone".into(), json!(format!("+1 555 01{:02}", n % 100)));
        a.insert(
            "cf".into(),
            json!({"cf_account_code": format!("AC-{n:05}")}),
        );
        account_ids.push(id.to_string());
        compact("accounts", &mut a);
        t.accounts.push(a);
    }

    // Contacts; every 9th reuses the previous contact's email under another account.
    let contact_count = (tickets / 3).max(5);
    let mut contact_ids = Vec::new();
    let mut contact_accounts = Vec::new();
    let mut contact_emails: Vec<Option<String>> = Vec::new();
    for n in 0..contact_count {
        let id = g.id();
        let first = FIRST[(n * 3) % FIRST.len()];
        let last = LAST[(n * 5) % LAST.len()];
        let account = account_ids[n % account_ids.len()].clone();
        let email = if n % 9 == 8 {
            contact_emails[n - 1].clone()
        } else if n % 13 == 12 {
            None
        } else {
            Some(format!(
                "{}.{}{}@customer.example.org",
                first.to_lowercase(),
                last.to_lowercase(),
                n
            ))
        };
        let mut c = new_contact(id, last, &g.at(100 + n as i64), Some(agent_ids[0].clone()));
        c.insert("firstName".into(), json!(first));
        c.insert("email".into(), json!(email));
        c.insert("phone".into(), json!(format!("+1 555 2{:03}", n % 1000)));
        c.insert("accountId".into(), json!(account));
        c.insert(
            "cf".into(),
            json!({"cf_customer_tier": tiers[n % tiers.len()]}),
        );
        contact_ids.push(id.to_string());
        contact_accounts.push(account);
        contact_emails.push(email);
        compact("contacts", &mut c);
        t.contacts.push(c);
    }

    // Tickets and their children.
    let mut number = 101u64;
    let mut ticket_refs: Vec<(String, u64, usize)> = Vec::new();
    let active_agents: Vec<String> = t
        .agents
        .iter()
        .filter(|a| a.get("status").and_then(Value::as_str) == Some("ACTIVE"))
        .filter_map(|a| s(a, "id"))
        .collect();
    for n in 0..tickets {
        let id = g.id();
        let tid = id.to_string();
        let dept_idx = g.rng.random_range(0..dept_ids.len());
        let c_idx = g.rng.random_range(0..contact_ids.len());
        let created_min = 1_000 + (n as i64) * 40 + g.rng.random_range(0..30);
        let created = g.at(created_min);
        let later = created_min + g.rng.random_range(1..20_000);
        let modified = g.at(later);
        let mut tk = new_ticket(id, number, &created, Some(agent_ids[0].clone()));
        let (cat, subs) = *g.pick(CATEGORIES);
        let status = *g.pick(STATUSES);
        let subject = format!("{} issue: {}", cat, sentence(&mut g, 5));
        let assignee = if g.rng.random_bool(0.8) {
            Some(g.pick(&agent_ids).clone())
        } else {
            None
        };
        tk.insert("subject".into(), json!(subject));
        tk.insert("departmentId".into(), json!(dept_strs[dept_idx]));
        tk.insert("contactId".into(), json!(contact_ids[c_idx]));
        tk.insert("accountId".into(), json!(contact_accounts[c_idx]));
        tk.insert("email".into(), json!(contact_emails[c_idx]));
        tk.insert("status".into(), json!(status));
        tk.insert("statusType".into(), json!(status_type(status)));
        tk.insert("priority".into(), json!(g.pick(PRIORITIES)));
        tk.insert("channel".into(), json!(g.pick(CHANNELS)));
        tk.insert("category".into(), json!(cat));
        tk.insert("subCategory".into(), json!(g.pick(subs)));
        tk.insert("assigneeId".into(), json!(assignee.clone()));
        tk.insert(
            "productId".into(),
            if n % 3 == 0 {
                json!(g.pick(&product_ids))
            } else {
                Value::Null
            },
        );
        tk.insert("dueDate".into(), json!(g.at(created_min + 4_320)));
        tk.insert("modifiedTime".into(), json!(modified));
        tk.insert("customerResponseTime".into(), json!(created));
        if status == "Closed" {
            tk.insert("closedTime".into(), json!(modified));
        }
        let mut cf = json!({"cf_legacy_reference": format!("LEG-{seed}-{n:06}"), "cf_severity": severity[n % 4]});
        if dept_idx == 2 {
            cf["cf_region"] = json!(regions[n % 3]);
        }
        if n % 6 == 0 {
            cf["cf_renewal_date"] = json!(g.at(created_min + 525_600)[..10].to_string());
        }
        if n % 4 == 0 {
            cf["cf_seats"] = json!((5 + n % 200).to_string());
        }
        if n % 5 != 4 {
            cf["cf_under_contract"] = json!(if n % 2 == 0 { "true" } else { "false" });
        }
        if n % 3 == 1 {
            let picked: Vec<&str> = MODULES
                .iter()
                .enumerate()
                .filter(|(k, _)| (n >> k) & 1 == 1 || *k == n % MODULES.len())
                .map(|(_, m)| *m)
                .collect();
            cf["cf_affected_modules"] = json!(picked.join(";"));
        }
        tk.insert("cf".into(), cf);
        let tag_n = g.rng.random_range(0..3usize);
        let tags: Vec<Value> = (0..tag_n)
            .map(|k| json!(tag_ids[(n + k * 3) % tag_ids.len()]))
            .collect();
        tk.insert("_tags".into(), Value::Array(tags));
        let mut description = format!("<div>{}</div>", sentence(&mut g, 20));
        // Every 10th description shows a ticket attachment inline (Zoho serves it with OAuth).
        if n % 10 == 3 {
            let aid = g.id();
            description.push_str(&format!(
                "<p><img src=\"{{base}}/api/v1/tickets/{tid}/attachments/{aid}/content\" alt=\"diagram\"></p><p>See the diagram above.</p>"
            ));
            let bytes = image_bytes(&mut g, 200 + n % 97);
            let meta = crate::inspect::attachment_meta(
                aid,
                &tid,
                None,
                &format!("diagram-{n}.png"),
                bytes.len(),
                &g.at(created_min),
                "{base}",
                &Rec::new(),
            );
            t.attachments.push((meta, bytes));
        }
        tk.insert("description".into(), json!(description));

        // A ticket that points at an earlier ticket of another department.
        let related = ticket_refs
            .iter()
            .rev()
            .take(20)
            .find(|(_, _, d)| *d != dept_idx)
            .cloned();

        let thread_n = g.rng.random_range(1..5usize);
        for k in 0..thread_n {
            let th = g.id();
            let mut thread = thread_defaults(th, &tid, &g.at(created_min + (k as i64) * 60));
            let inbound = k % 2 == 0;
            let private = !inbound && g.rng.random_bool(0.25);
            let (author, from) = if inbound {
                let c = &t.contacts[c_idx];
                (
                    json!({"id": c.get("id"), "name": format!("{} {}", c.get("firstName").and_then(Value::as_str).unwrap_or(""), c.get("lastName").and_then(Value::as_str).unwrap_or("")),
                        "firstName": c.get("firstName"), "lastName": c.get("lastName"), "email": c.get("email"), "photoURL": null, "type": "END_USER"}),
                    contact_emails[c_idx].clone(),
                )
            } else {
                let a = t
                    .agents
                    .iter()
                    .find(|a| s(a, "id") == assignee)
                    .unwrap_or(&t.agents[0]);
                (
                    json!({"id": a.get("id"), "name": a.get("name"), "firstName": a.get("firstName"), "lastName": a.get("lastName"),
                        "email": a.get("emailId"), "photoURL": null, "type": "AGENT"}),
                    Some("support@desk.example.com".to_string()),
                )
            };
            let mut body = format!("<div>{}</div>", sentence(&mut g, 30));
            if n % 10 == 0 && k == 0 {
                body.push_str(&format!("<div>{}</div>", sentence(&mut g, 1_200)));
            }
            if k == 0
                && let Some((rid, rnum, rdept)) = &related
            {
                body.push_str(&format!(
                    "<p>Related to ticket <a href=\"{}\">#{rnum}</a> in {}.</p>",
                    web_url("Cases", rid.parse().unwrap_or(0)),
                    dept_names[*rdept]
                ));
            }
            if n % 10 == 5 && k == 0 {
                let aid = g.id();
                body.push_str(&format!("<p><img src=\"{{base}}/api/v1/tickets/{tid}/threads/{th}/attachments/{aid}/content\" alt=\"screenshot\"></p>"));
                let bytes = image_bytes(&mut g, 100 + n % 89);
                let meta = crate::inspect::attachment_meta(
                    aid,
                    &tid,
                    Some(&th.to_string()),
                    "screenshot.png",
                    bytes.len(),
                    &g.at(created_min),
                    "{base}",
                    &Rec::new(),
                );
                t.attachments.push((meta, bytes));
            }
            thread.insert(
                "direction".into(),
                json!(if inbound { "in" } else { "out" }),
            );
            thread.insert(
                "visibility".into(),
                json!(if private { "private" } else { "public" }),
            );
            thread.insert("isDescriptionThread".into(), json!(k == 0));
            thread.insert("author".into(), author);
            thread.insert("fromEmailAddress".into(), json!(from));
            thread.insert(
                "to".into(),
                json!(if inbound {
                    Some("support@desk.example.com".to_string())
                } else {
                    contact_emails[c_idx].clone()
                }),
            );
            thread.insert(
                "responderId".into(),
                if inbound {
                    Value::Null
                } else {
                    json!(assignee)
                },
            );
            thread.insert("content".into(), json!(body));
            compact("threads", &mut thread);
            t.threads.push(thread);
        }
        for k in 0..g.rng.random_range(0..3usize) {
            let cid = g.id();
            let a = &t.agents[(n + k) % t.agents.len()];
            t.comments.push(obj(json!({
                "id": cid.to_string(), "content": format!("<div>Internal note: {}</div>", sentence(&mut g, 12)), "contentType": "html",
                "isPublic": k % 2 == 1, "commentedTime": g.at(created_min + 120 + k as i64), "modifiedTime": null,
                "commenterId": a.get("id"),
                "commenter": {"id": a.get("id"), "firstName": a.get("firstName"), "lastName": a.get("lastName"), "name": a.get("name"),
                    "email": a.get("emailId"), "photoURL": null, "roleName": "Agent", "type": "AGENT"},
                "impersonatedUser": null, "attachments": [], "_ticketId": tid,
            })));
            if let Some(c) = t.comments.last_mut() {
                compact("comments", c);
            }
        }
        if n % 5 == 2 {
            let aid = g.id();
            let size = g.rng.random_range(1_024..20_480usize);
            let bytes: Vec<u8> = (0..size).map(|_| g.rng.random::<u8>()).collect();
            let meta = crate::inspect::attachment_meta(
                aid,
                &tid,
                None,
                &format!("log-{n}.bin"),
                bytes.len(),
                &g.at(created_min + 5),
                "{base}",
                &Rec::new(),
            );
            t.attachments.push((meta, bytes));
        }
        if n % 4 == 1 {
            let task_id = g.id();
            let mut task = new_task(
                task_id,
                &format!("Follow up on #{number}"),
                &dept_strs[dept_idx],
                &g.at(created_min + 30),
                Some(agent_ids[0].clone()),
            );
            task.insert("ticketId".into(), json!(tid));
            task.insert("ownerId".into(), json!(g.pick(&active_agents)));
            task.insert("dueDate".into(), json!(g.at(created_min + 2_880)));
            task.insert(
                "status".into(),
                json!(if n % 8 == 1 {
                    "Completed"
                } else {
                    "Not Started"
                }),
            );
            task.insert("priority".into(), json!("Normal"));
            compact("tasks", &mut task);
            t.tasks.push(task);
        }
        ticket_refs.push((tid, number, dept_idx));
        number += 1;
        compact("tickets", &mut tk);
        t.tickets.push(tk);
    }
    // An orphan task with no ticket.
    let orphan = g.id();
    t.tasks.push(new_task(
        orphan,
        "Quarterly review of macros",
        &dept_strs[0],
        &g.at(500),
        Some(agent_ids[0].clone()),
    ));
    t.next_ticket_number = number;
    t
}
