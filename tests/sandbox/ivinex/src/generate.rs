//! The tenant generator: a realistic, deliberately awkward Ivinex helpdesk tenant, a pure function
//! of (seed, ticket count). Field names vary per seed among synonyms; roles (see [`FieldDef::role`])
//! tell the sandbox which field is which.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::files::BlobGen;
use crate::model::{
    Attachment, Content, DEFAULT_FIELDS, FieldDef, FieldType, Link, LinkType, Record, TabData,
    TabDef, Tenant, field_name_from,
};

/// Tab names, in TabID order.
pub const TABS: [&str; 10] = [
    "Contacts",
    "Organizations",
    "Tickets",
    "Activities",
    "Tasks",
    "Users",
    "Groups",
    "Workflows",
    "Views",
    "ChangeHistory",
];

/// Tabs that carry tenant custom fields of every type.
pub const HELPDESK_TABS: [&str; 7] = [
    "Users",
    "Groups",
    "Organizations",
    "Contacts",
    "Tickets",
    "Activities",
    "Tasks",
];

/// Files declared above this size must be flagged by a client (25 MiB: over 25 MB either way).
pub const LARGE_FILE_BYTES: u64 = 25 * 1024 * 1024;

/// Generated md5s are computed eagerly below this size.
const EAGER_MD5_BYTES: u64 = 1_000_000;

/// Upper end of generated dates: the tenant's "today".
const ANCHOR: &str = "2025-05-01T12:00:00Z";
const YEAR_SECS: i64 = 365 * 86_400;

enum Opts {
    None,
    /// One of these option lists, chosen per seed (lists keep the same meaning by position).
    Sets(&'static [&'static [&'static str]]),
    /// A per-seed subset of this pool, of size within the range.
    Subset(&'static [&'static str], usize, usize),
}

struct Spec {
    role: &'static str,
    names: &'static [&'static str],
    ty: FieldType,
    opts: Opts,
    linked: Option<&'static str>,
    required: bool,
}

fn sp(role: &'static str, names: &'static [&'static str], ty: FieldType) -> Spec {
    Spec {
        role,
        names,
        ty,
        opts: Opts::None,
        linked: None,
        required: false,
    }
}
fn req(mut s: Spec) -> Spec {
    s.required = true;
    s
}
fn opts(mut s: Spec, sets: &'static [&'static [&'static str]]) -> Spec {
    s.opts = Opts::Sets(sets);
    s
}
fn link(mut s: Spec, tab: &'static str) -> Spec {
    s.linked = Some(tab);
    s
}

const FIRST_NAMES: [&str; 3] = ["First Name", "Given Name", "First"];
const LAST_NAMES: [&str; 3] = ["Last Name", "Surname", "Family Name"];
const EMAILS: [&str; 3] = ["Email", "E-mail", "Email Address"];

fn tab_specs(tab: &str) -> Vec<Spec> {
    use FieldType::*;
    match tab {
        "Groups" => vec![
            req(sp("name", &["Group Name", "Name", "Team Name"], Text)),
            sp(
                "description",
                &["Description", "Notes", "Purpose"],
                Textarea,
            ),
            opts(
                sp(
                    "permissions",
                    &["Permissions", "Access Rights", "Privileges"],
                    Multiselect,
                ),
                &[&[
                    "API Access",
                    "View Records",
                    "Edit Records",
                    "Delete Records",
                    "Export Data",
                    "Manage Users",
                    "Manage Workflows",
                    "Admin",
                ]],
            ),
        ],
        "Users" => vec![
            req(sp("username", &["Username", "User Name", "Login"], Text)),
            sp("first_name", &FIRST_NAMES, Text),
            sp("last_name", &LAST_NAMES, Text),
            sp("email", &EMAILS, Email),
            opts(
                sp("role", &["Role", "User Role", "Access Level"], Dropdown),
                &[
                    &["Administrator", "Supervisor", "Agent", "Read Only"],
                    &["Admin", "Manager", "Agent", "Viewer"],
                    &["System Admin", "Team Lead", "Support Agent", "Light User"],
                ],
            ),
            sp("active", &["Active", "Is Active", "Enabled"], Checkbox),
            link(
                sp("group", &["Group", "User Group", "Team"], LinkedRecord),
                "Groups",
            ),
            sp("phone", &["Phone", "Extension", "Direct Line"], Phone),
            sp("title", &["Title", "Job Title", "Position"], Text),
        ],
        "Organizations" => vec![
            req(sp("name", &["Organization Name", "Company", "Name"], Text)),
            sp("phone", &["Phone", "Main Phone", "Phone Number"], Phone),
            sp("email", &["Email", "General Email", "Company Email"], Email),
            sp("website", &["Website", "Web Site", "URL"], Url),
            sp(
                "street",
                &["Street", "Address Line 1", "Street Address"],
                Text,
            ),
            sp("city", &["City", "Town"], Text),
            sp("state", &["State", "Province", "State/Province"], Text),
            sp("zip", &["Zip", "Postal Code", "ZIP Code"], Text),
            sp("country", &["Country", "Country/Region"], Text),
        ],
        "Contacts" => vec![
            sp("first_name", &FIRST_NAMES, Text),
            req(sp("last_name", &LAST_NAMES, Text)),
            sp("email", &EMAILS, Email),
            sp("phone", &["Phone", "Work Phone", "Business Phone"], Phone),
            sp("mobile", &["Mobile", "Cell Phone", "Mobile Phone"], Phone),
            link(
                sp(
                    "organization",
                    &["Organization", "Company", "Account"],
                    LinkedRecord,
                ),
                "Organizations",
            ),
            sp("title", &["Job Title", "Title", "Position"], Text),
        ],
        "Tickets" => vec![
            req(sp(
                "subject",
                &["Subject", "Title", "Summary", "Ticket Subject"],
                Text,
            )),
            sp(
                "description",
                &["Description", "Details", "Problem Description"],
                Textarea,
            ),
            opts(
                sp("status", &["Status", "Ticket Status", "State"], Dropdown),
                &[
                    &[
                        "New",
                        "Open",
                        "Waiting on Customer",
                        "On Hold",
                        "Escalated",
                        "Resolved",
                        "Closed",
                    ],
                    &[
                        "New",
                        "In Progress",
                        "Pending Customer",
                        "On Hold",
                        "Escalated",
                        "Solved",
                        "Closed",
                    ],
                    &[
                        "Open",
                        "Assigned",
                        "Awaiting Reply",
                        "Paused",
                        "Escalated - Tier 2",
                        "Fixed",
                        "Closed",
                    ],
                ],
            ),
            opts(
                sp("priority", &["Priority", "Urgency", "Severity"], Dropdown),
                &[
                    &["Low", "Medium", "High", "Urgent"],
                    &["P4 - Low", "P3 - Normal", "P2 - High", "P1 - Critical"],
                    &["Low", "Normal", "High", "Emergency"],
                ],
            ),
            Spec {
                opts: Opts::Subset(
                    &[
                        "Support",
                        "Billing",
                        "Technical",
                        "Sales",
                        "Customer Success",
                        "IT Helpdesk",
                    ],
                    2,
                    4,
                ),
                ..sp("department", &["Department", "Queue", "Team"], Dropdown)
            },
            sp(
                "assignee",
                &["Assigned To", "Owner", "Assignee", "Agent"],
                UserLink,
            ),
            link(
                sp(
                    "contact",
                    &["Contact", "Requester", "Customer"],
                    LinkedRecord,
                ),
                "Contacts",
            ),
            link(
                sp(
                    "organization",
                    &["Organization", "Company", "Account"],
                    LinkedRecord,
                ),
                "Organizations",
            ),
            sp("spam", &["Spam", "Is Spam", "Marked as Spam"], Checkbox),
            opts(
                sp("channel", &["Channel", "Source", "Origin"], Dropdown),
                &[
                    &["Email", "Phone", "Web Form", "Chat", "Walk-in"],
                    &["E-mail", "Phone", "Portal", "Live Chat", "Social"],
                ],
            ),
            opts(
                sp("tags", &["Tags", "Labels", "Keywords"], Multiselect),
                &[&[
                    "billing",
                    "bug",
                    "feature-request",
                    "urgent",
                    "vip",
                    "outage",
                    "how-to",
                    "refund",
                    "onboarding",
                    "security",
                ]],
            ),
            sp("due", &["Due Date", "Resolution Due", "Deadline"], Datetime),
        ],
        "Activities" => vec![
            link(
                sp(
                    "ticket",
                    &["Ticket", "Related Ticket", "Case"],
                    LinkedRecord,
                ),
                "Tickets",
            ),
            opts(
                sp("type", &["Type", "Activity Type", "Kind"], Dropdown),
                &[
                    &["Call", "Email", "Note"],
                    &["Phone Call", "E-mail", "Internal Note"],
                    &["Call Log", "Email Message", "Comment"],
                ],
            ),
            opts(
                sp(
                    "direction",
                    &["Direction", "Email Direction", "In/Out"],
                    Dropdown,
                ),
                &[&["Inbound", "Outbound"], &["Incoming", "Outgoing"]],
            ),
            sp("from", &["From", "Sender", "From Address"], Text),
            sp("to", &["To", "Recipients", "To Address"], Text),
            sp("cc", &["CC", "Cc List", "Copy To"], Text),
            sp("subject", &["Subject", "Email Subject", "Title"], Text),
            sp("body", &["Body", "Message", "Content", "Notes"], Textarea),
            opts(
                sp(
                    "disposition",
                    &["Call Disposition", "Call Result", "Outcome"],
                    Dropdown,
                ),
                &[
                    &["Answered", "Voicemail", "No Answer", "Busy", "Wrong Number"],
                    &[
                        "Connected",
                        "Left Voicemail",
                        "No Answer",
                        "Busy",
                        "Wrong Number",
                        "Callback Requested",
                    ],
                ],
            ),
            sp(
                "duration",
                &[
                    "Duration",
                    "Call Duration (sec)",
                    "Duration (seconds)",
                    "Talk Time",
                ],
                Number,
            ),
        ],
        "Tasks" => vec![
            req(sp("subject", &["Subject", "Task Name", "Title"], Text)),
            sp("due", &["Due Date", "Due", "Deadline"], Date),
            opts(
                sp("status", &["Status", "Task Status", "Progress"], Dropdown),
                &[
                    &["Not Started", "In Progress", "Completed", "Deferred"],
                    &["To Do", "Doing", "Done", "Postponed"],
                    &["Open", "Working", "Finished", "On Ice"],
                ],
            ),
            opts(
                sp("priority", &["Priority", "Importance"], Dropdown),
                &[
                    &["Low", "Normal", "High"],
                    &["Low", "Medium", "High", "Critical"],
                ],
            ),
            sp("owner", &["Owner", "Assigned To", "Responsible"], UserLink),
            link(
                sp(
                    "ticket",
                    &["Ticket", "Related Ticket", "Case"],
                    LinkedRecord,
                ),
                "Tickets",
            ),
            sp(
                "description",
                &["Description", "Details", "Notes"],
                Textarea,
            ),
        ],
        "Workflows" => vec![
            req(sp("name", &["Workflow Name", "Name", "Rule Name"], Text)),
            sp("tab", &["Tab", "Module", "Applies To"], Text),
            opts(
                sp("trigger", &["Trigger", "When", "Event"], Dropdown),
                &[&[
                    "Record Created",
                    "Record Updated",
                    "Field Changed",
                    "Scheduled",
                    "Email Received",
                ]],
            ),
            sp("conditions", &["Conditions", "Criteria", "If"], Textarea),
            sp("actions", &["Actions", "Then", "Steps"], Textarea),
            sp("active", &["Active", "Enabled", "Is Active"], Checkbox),
        ],
        "Views" => vec![
            req(sp("name", &["View Name", "Name", "Title"], Text)),
            sp("tab", &["Tab", "Module"], Text),
            sp(
                "filters",
                &["Filters", "Criteria", "Filter Conditions"],
                Textarea,
            ),
            sp(
                "columns",
                &["Columns", "Visible Columns", "Fields Shown"],
                Textarea,
            ),
            sp("shared", &["Shared", "Public", "Visible to All"], Checkbox),
            sp("owner", &["Owner", "Created For"], UserLink),
        ],
        "ChangeHistory" => vec![
            sp("record_tab", &["Record Tab", "Module", "Tab"], Text),
            sp("record_id", &["Record ID", "Record", "Item ID"], Number),
            sp("field", &["Field", "Field Name", "Changed Field"], Text),
            sp(
                "old_value",
                &["Old Value", "Previous Value", "From Value"],
                Textarea,
            ),
            sp(
                "new_value",
                &["New Value", "To Value", "Changed To"],
                Textarea,
            ),
            sp(
                "changed_by",
                &["Changed By", "User", "Modified By User"],
                UserLink,
            ),
            sp(
                "changed_at",
                &["Changed At", "Change Date", "Timestamp"],
                Datetime,
            ),
        ],
        _ => Vec::new(),
    }
}

const CUSTOM_TEXT: &[&str] = &[
    "Account Number",
    "External Reference",
    "Customer #",
    "Legacy ID",
    "Region Code",
    "Cost Center",
    "PO Number",
    "Référence Client",
];
const CUSTOM_TEXTAREA: &[&str] = &[
    "Internal Notes",
    "Special Instructions",
    "Background",
    "Remarks",
];
const CUSTOM_NUMBER: &[&str] = &[
    "Seats",
    "Employee Count",
    "Reopen Count",
    "Licenses",
    "Call Attempts",
    "Years as Customer",
];
const CUSTOM_DECIMAL: &[&str] = &[
    "Contract Value",
    "Hours Spent",
    "Discount %",
    "Satisfaction Score",
    "Annual Revenue (USD)",
];
const CUSTOM_DATE: &[&str] = &[
    "Renewal Date",
    "Go-Live Date",
    "Contract Start",
    "Birthday",
    "Review Date",
];
const CUSTOM_DATETIME: &[&str] = &[
    "Last Contacted",
    "SLA Due",
    "First Response At",
    "Escalated At",
    "Next Follow-up",
];
const CUSTOM_DROPDOWN: &[(&str, &[&str])] = &[
    ("Tier", &["Bronze", "Silver", "Gold", "Platinum"]),
    ("Region", &["NA", "EMEA", "APAC", "LATAM"]),
    ("Product Line", &["Core", "Pro", "Enterprise", "Add-on"]),
    ("Plan", &["Free", "Starter", "Business", "Enterprise"]),
    (
        "Preferred Language",
        &[
            "English",
            "Español",
            "Français",
            "Deutsch",
            "日本語",
            "العربية",
        ],
    ),
];
const CUSTOM_MULTI: &[(&str, &[&str])] = &[
    (
        "Products Owned",
        &["Widget", "Gadget", "Gizmo", "Doohickey", "Thingamajig"],
    ),
    (
        "Interests",
        &["Webinars", "Beta Program", "Newsletter", "Events"],
    ),
    (
        "Affected Modules",
        &["Login", "Billing", "Reports", "API", "Mobile App"],
    ),
    (
        "Languages Spoken",
        &["English", "Spanish", "French", "German", "Arabic", "Hebrew"],
    ),
];
const CUSTOM_CHECKBOX: &[&str] = &[
    "VIP",
    "Is VIP?",
    "Do Not Contact",
    "Under Contract",
    "Newsletter Opt-in",
];
const CUSTOM_EMAIL: &[&str] = &["Billing Email", "Secondary Email", "Escalation Email"];
const CUSTOM_PHONE: &[&str] = &["Fax", "Alt Phone", "Emergency Phone"];
const CUSTOM_URL: &[&str] = &[
    "LinkedIn",
    "Portal Link",
    "Profile URL",
    "Documentation Link",
];
const CUSTOM_USER: &[&str] = &[
    "Account Manager",
    "Escalation Owner",
    "Reviewer",
    "Approver",
];

/// Custom linked_record per tab: target tab (always generated no later than the tab itself) and names.
fn custom_link(tab: &str) -> (&'static str, &'static [&'static str]) {
    match tab {
        "Groups" => ("Groups", &["Parent Group", "Escalation Group"]),
        "Users" => ("Groups", &["Secondary Group", "Backup Team"]),
        "Organizations" => (
            "Organizations",
            &["Parent Organization", "Parent Company", "Reseller"],
        ),
        "Contacts" => ("Contacts", &["Referred By", "Assistant", "Reports To"]),
        "Tickets" => (
            "Tickets",
            &["Parent Ticket", "Duplicate Of", "Related Case"],
        ),
        "Activities" => ("Contacts", &["Spoke With", "Contact Person"]),
        _ => ("Organizations", &["Customer Account", "Client"]),
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

const PEOPLE_FIRST: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Susan",
    "Richard",
    "Jessica",
    "Thomas",
    "Sarah",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Emily",
    "Mark",
    "Aisha",
    "Wei",
    "Priya",
    "Kenji",
    "Olga",
    "Lars",
    "Fatima",
    "Carlos",
];
const PEOPLE_FIRST_NASTY: &[&str] = &[
    "José",
    "Zoë",
    "Björn",
    "Łukasz",
    "Søren",
    "Nguyễn",
    "محمد",
    "فاطمة",
    "דוד",
    "שרה",
    "李",
    "王芳",
    "Ольга",
    "Αλέξανδρος",
    "Siobhán",
    "Anna 🌸",
    "😀",
    "Jean-Luc",
    "Mary Ann",
    "",
    "  Leading Space",
];
const PEOPLE_LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Patel",
    "Chen",
    "Kim",
    "Nakamura",
    "Kowalski",
    "Novak",
    "Haddad",
    "Cohen",
];
const PEOPLE_LAST_NASTY: &[&str] = &[
    "García",
    "Müller",
    "O'Brien",
    "Øster",
    "العلي",
    "כהן",
    "张",
    "Иванова",
    "D'Angelo",
    "van der Berg",
    "Smith-Jones",
    "Nguyễn Văn",
    "🦄",
    "Ñúñez",
    "Straße",
];

const ORG_ADJ: &[&str] = &[
    "Blue",
    "Global",
    "United",
    "Pacific",
    "Northern",
    "Silver",
    "Rapid",
    "Bright",
    "Summit",
    "Green",
    "Apex",
    "Prime",
    "Coastal",
    "Golden",
    "Urban",
    "Pioneer",
    "Atlas",
    "Evergreen",
    "Crimson",
    "Liberty",
];
const ORG_NOUN: &[&str] = &[
    "River",
    "Logistics",
    "Dynamics",
    "Health",
    "Foods",
    "Energy",
    "Systems",
    "Media",
    "Ventures",
    "Analytics",
    "Robotics",
    "Partners",
    "Labs",
    "Networks",
    "Holdings",
    "Outfitters",
    "Clinics",
    "Software",
    "Freight",
    "Studios",
];
const ORG_SUFFIX: &[&str] = &[
    "Inc.", "LLC", "Ltd", "GmbH", "S.A.", "Corp", "& Co.", "Pty Ltd",
];
const ORG_NASTY: &[&str] = &[
    "Société Générale d'Électricité",
    "Müller & Söhne GmbH",
    "شركة الأفق للتقنية",
    "אלפא טכנולוגיות בע״מ",
    "🚀 Rocket Labs",
    "株式会社サンプル",
    "Ωmega \"Quoted\" <Partners>",
    "ACME, Inc. (Legacy; do not use)",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("New York", "NY", "United States"),
    ("Austin", "TX", "United States"),
    ("Toronto", "ON", "Canada"),
    ("London", "", "United Kingdom"),
    ("München", "Bayern", "Germany"),
    ("São Paulo", "SP", "Brazil"),
    ("Tel Aviv", "", "Israel"),
    ("Dubai", "", "United Arab Emirates"),
    ("東京", "東京都", "Japan"),
    ("Sydney", "NSW", "Australia"),
    ("Paris", "Île-de-France", "France"),
];
const STREETS: &[&str] = &[
    "Main St",
    "Oak Avenue",
    "Route 9",
    "Rue de la Paix",
    "Hauptstraße",
    "King St W",
    "Sheikh Zayed Rd",
];

const SENTENCES: &[&str] = &[
    "I cannot log in since this morning and the reset link never arrives.",
    "Our invoice shows the wrong number of seats for last month.",
    "The export to CSV drops every row after the first 1,000.",
    "Could you please call me back about the renewal?",
    "The mobile app crashes when I open a report with émojis 😀 in the title.",
    "We were charged twice — please refund the duplicate payment.",
    "The dashboard shows times one hour off since the DST change.",
    "Printer on the 3rd floor says \"offline\" although it is on.",
    "Ich kann keine Dateien hochladen, die größer als 10 MB sind.",
    "لا يمكنني الوصول إلى حسابي منذ يوم أمس.",
    "אני לא מצליח להתחבר למערכת.",
    "The API returns 500 for requests with a & or < in the name.",
    "Thanks for the quick fix, everything works again.",
    "Please escalate: this blocks our month-end close.",
];
const SUBJECTS: &[&str] = &[
    "Cannot log in",
    "Invoice #{n} is wrong",
    "Refund request for order {n}",
    "Printer offline on floor {n}",
    "Feature request: dark mode",
    "Re: Re: Fwd: contract question",
    "URGENT!!! system down",
    "Question about the Business plan",
    "Ünïcödé test — ✓ 🚀",
    "שאלה לגבי החשבון",
    "استفسار عن الفاتورة",
    "Password reset",
    "Export to CSV broken",
    "Data request <GDPR> & deletion",
    "SSO with Okta fails after update",
    "Billing address change",
];
const TASK_SUBJECTS: &[&str] = &[
    "Call back customer",
    "Send replacement part",
    "Follow up on invoice",
    "Schedule on-site visit",
    "Review contract renewal",
    "Escalate to engineering",
    "Update knowledge base",
    "Confirm refund processed",
];
const ATTACH_NAMES: &[&str] = &[
    "invoice 2023-04.pdf",
    "screenshot (1).png",
    "Résumé final.docx",
    "договор.pdf",
    "تقرير الربع.xlsx",
    "photo 😀.jpg",
    "error.log",
    "export.csv",
    "report#1?.csv",
    "no_extension",
    "archive.tar.gz",
    ".htaccess",
    "image.png",
    "scan0001.PDF",
    "notes.txt",
    "forwarded message.eml",
];
const BIG_NAMES: &[&str] = &[
    "full-backup-2024.zip",
    "screen recording.mp4",
    "database-dump.sql.gz",
];
const GROUP_NAMES: &[&str] = &[
    "Tier 1 Support",
    "Tier 2 Support",
    "Billing Team",
    "Administrators",
    "Managers",
    "API Users",
    "Night Shift",
    "Contractors",
    "Sales Engineering",
];
const WORKFLOW_NAMES: &[&str] = &[
    "Auto-assign new tickets",
    "Escalate urgent tickets after 1h",
    "Notify account manager on VIP ticket",
    "Close resolved tickets after 7 days",
    "Send CSAT survey",
    "Route billing emails",
    "Create follow-up task on voicemail",
    "Flag spam from blocked domains",
    "Weekly SLA report",
    "Sync organization to ERP",
    "Welcome new contact",
    "Reopen on customer reply",
    "Tag security reports",
    "Nightly cleanup of test records",
    "Alert on outage keyword",
];
const VIEW_NAMES: &[&str] = &[
    "My Open Tickets",
    "Unassigned",
    "Escalated — all departments",
    "VIP Customers",
    "Overdue Tasks",
    "Calls this week",
    "Billing queue",
    "Closed last 30 days",
    "Contacts without email",
    "Organizations by region",
    "Spam review",
    "Waiting on customer > 3 days",
    "Night shift queue",
    "Emails with CC",
    "Everything (admin)",
];

/// Working state of one generation run.
struct Gen {
    t: Tenant,
    tickets: usize,
    anchor: i64,
    tab_idx: HashMap<&'static str, usize>,
    ids: HashMap<String, Vec<u64>>,
    usernames: Vec<String>,
    active_usernames: Vec<String>,
    inactive_usernames: Vec<String>,
    user_emails: Vec<String>,
    /// (first, last) per username, same order.
    user_names: Vec<(String, String)>,
    mail_domain: &'static str,
}

#[derive(Clone, Copy)]
enum Md5Mode {
    Right,
    Absent,
    Wrong,
}

/// Generates a whole tenant. Pure: the same (seed, tickets) always gives the same tenant.
pub fn generate(seed: u64, tickets: usize) -> Tenant {
    build(seed, tickets, false)
}

/// The schema a tenant of this seed has, without any record.
pub fn schema(seed: u64) -> Tenant {
    build(seed, 0, true)
}

fn build(seed: u64, tickets: usize, schema_only: bool) -> Tenant {
    let anchor = ANCHOR
        .parse::<Timestamp>()
        .expect("valid anchor")
        .as_second();
    let mut g = Gen {
        t: Tenant::empty(seed),
        tickets,
        anchor,
        tab_idx: HashMap::new(),
        ids: HashMap::new(),
        usernames: Vec::new(),
        active_usernames: Vec::new(),
        inactive_usernames: Vec::new(),
        user_emails: Vec::new(),
        user_names: Vec::new(),
        mail_domain: "",
    };
    g.schema(&mut sandbox_kit::seeded_rng(seed, 1));
    if schema_only {
        return g.t;
    }
    g.identities(&mut sandbox_kit::seeded_rng(seed, 2));
    g.groups(&mut sandbox_kit::seeded_rng(seed, 3));
    g.users(&mut sandbox_kit::seeded_rng(seed, 4));
    g.organizations(&mut sandbox_kit::seeded_rng(seed, 5));
    g.contacts(&mut sandbox_kit::seeded_rng(seed, 6));
    let infos = g.tickets(&mut sandbox_kit::seeded_rng(seed, 7));
    g.activities(&mut sandbox_kit::seeded_rng(seed, 8), &infos);
    g.big_files(&mut sandbox_kit::seeded_rng(seed, 9));
    g.tasks(&mut sandbox_kit::seeded_rng(seed, 10));
    g.workflows(&mut sandbox_kit::seeded_rng(seed, 11));
    g.views(&mut sandbox_kit::seeded_rng(seed, 12));
    g.history(&mut sandbox_kit::seeded_rng(seed, 13));
    g.links(&mut sandbox_kit::seeded_rng(seed, 14));
    g.t
}

fn ascii_slug(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).expect("generated times are in range")
}

fn hex32(rng: &mut ChaCha8Rng) -> String {
    format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>())
}

impl Gen {
    fn schema(&mut self, rng: &mut ChaCha8Rng) {
        for (i, tab) in TABS.iter().enumerate() {
            self.t.tabs.push(TabData {
                def: TabDef {
                    tab_id: 1001 + i as u64,
                    name: tab.to_string(),
                    fields: Vec::new(),
                },
                records: BTreeMap::new(),
            });
            self.tab_idx.insert(tab, i);
        }
        for tab in TABS {
            let mut used: HashSet<String> = DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect();
            used.insert("attachments".into());
            for spec in tab_specs(tab) {
                let display = choose_name(rng, spec.names, &used);
                let options: Vec<String> = match spec.opts {
                    Opts::None => Vec::new(),
                    Opts::Sets(sets) => pick(rng, sets).iter().map(|s| s.to_string()).collect(),
                    Opts::Subset(pool, lo, hi) => {
                        let n = rng.random_range(lo..=hi);
                        let mut chosen: Vec<&str> = Vec::new();
                        while chosen.len() < n {
                            let c = *pick(rng, pool);
                            if !chosen.contains(&c) {
                                chosen.push(c);
                            }
                        }
                        chosen.iter().map(|s| s.to_string()).collect()
                    }
                };
                self.push_field(
                    tab,
                    &mut used,
                    display,
                    spec.ty,
                    options,
                    spec.linked.map(str::to_string),
                    spec.required,
                    spec.role,
                );
            }
            if HELPDESK_TABS.contains(&tab) {
                for ty in FieldType::ALL {
                    let (display, options, linked): (String, Vec<String>, Option<String>) = match ty
                    {
                        FieldType::Dropdown | FieldType::Multiselect => {
                            let pool = if ty == FieldType::Dropdown {
                                CUSTOM_DROPDOWN
                            } else {
                                CUSTOM_MULTI
                            };
                            let names: Vec<&str> = pool.iter().map(|(n, _)| *n).collect();
                            let d = choose_name(rng, &names, &used);
                            let opts = pool
                                .iter()
                                .find(|(n, _)| *n == d)
                                .map(|(_, o)| o.to_vec())
                                .unwrap_or_default();
                            (d, opts.iter().map(|s| s.to_string()).collect(), None)
                        }
                        FieldType::LinkedRecord => {
                            let (target, names) = custom_link(tab);
                            (
                                choose_name(rng, names, &used),
                                Vec::new(),
                                Some(target.to_string()),
                            )
                        }
                        FieldType::UserLink => (
                            choose_name(rng, CUSTOM_USER, &used),
                            Vec::new(),
                            Some("Users".to_string()),
                        ),
                        _ => {
                            let pool = match ty {
                                FieldType::Text => CUSTOM_TEXT,
                                FieldType::Textarea => CUSTOM_TEXTAREA,
                                FieldType::Number => CUSTOM_NUMBER,
                                FieldType::Decimal => CUSTOM_DECIMAL,
                                FieldType::Date => CUSTOM_DATE,
                                FieldType::Datetime => CUSTOM_DATETIME,
                                FieldType::Checkbox => CUSTOM_CHECKBOX,
                                FieldType::Email => CUSTOM_EMAIL,
                                FieldType::Phone => CUSTOM_PHONE,
                                _ => CUSTOM_URL,
                            };
                            (choose_name(rng, pool, &used), Vec::new(), None)
                        }
                    };
                    let role = format!("custom_{}", ty.as_str());
                    self.push_field(tab, &mut used, display, ty, options, linked, false, &role);
                }
            }
        }
        // Built-in user_link fields name their target tab too.
        for t in &mut self.t.tabs {
            for f in &mut t.def.fields {
                if f.field_type == FieldType::UserLink {
                    f.linked_tab = Some("Users".into());
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_field(
        &mut self,
        tab: &str,
        used: &mut HashSet<String>,
        display: String,
        ty: FieldType,
        options: Vec<String>,
        linked_tab: Option<String>,
        required: bool,
        role: &str,
    ) {
        let mut name = field_name_from(&display);
        let mut n = 2;
        while used.contains(&name) {
            name = format!("{}_{n}", field_name_from(&display));
            n += 1;
        }
        used.insert(name.clone());
        self.t.add_field(
            tab,
            FieldDef {
                field_id: 0,
                field_name: name,
                display_text: display,
                field_type: ty,
                required,
                options,
                linked_tab,
                role: Some(role.to_string()),
            },
        );
    }

    fn ti(&self, tab: &str) -> usize {
        self.tab_idx[tab]
    }

    fn fi(&self, tab: &str, role: &str) -> usize {
        self.t.tabs[self.ti(tab)]
            .def
            .role_index(role)
            .unwrap_or_else(|| panic!("{tab} has a {role} field"))
    }

    fn options(&self, tab: &str, role: &str) -> Vec<String> {
        self.t.tabs[self.ti(tab)].def.fields[self.fi(tab, role)]
            .options
            .clone()
    }

    fn new_record(&mut self, tab: &str, by: &str, created: i64, modified: i64) -> Record {
        let id = self.t.alloc_record_id();
        Record {
            id,
            created_by: by.to_string(),
            created_at: ts(created),
            modified_by: by.to_string(),
            modified_at: ts(modified.max(created)),
            values: vec![Value::Null; self.t.tabs[self.ti(tab)].def.fields.len()],
            attachments: Vec::new(),
        }
    }

    fn insert(&mut self, tab: &str, rec: Record) {
        self.ids.entry(tab.to_string()).or_default().push(rec.id);
        let ti = self.ti(tab);
        self.t.tabs[ti].records.insert(rec.id, rec);
    }

    fn set(&self, rec: &mut Record, tab: &str, role: &str, v: Value) {
        rec.set(self.fi(tab, role), v);
    }

    fn random_time(&self, rng: &mut ChaCha8Rng, years: i64) -> i64 {
        self.anchor - rng.random_range(0..years * YEAR_SECS)
    }

    fn later(&self, rng: &mut ChaCha8Rng, from: i64, max_secs: i64) -> i64 {
        (from + rng.random_range(0..max_secs.max(1)))
            .min(self.anchor)
            .max(from)
    }

    fn any_user(&self, rng: &mut ChaCha8Rng) -> String {
        pick(rng, &self.usernames).clone()
    }

    fn active_user(&self, rng: &mut ChaCha8Rng) -> String {
        pick(rng, &self.active_usernames).clone()
    }

    fn person(&self, rng: &mut ChaCha8Rng, nasty_rate: f64) -> (String, String) {
        let first = if rng.random_bool(nasty_rate) {
            pick(rng, PEOPLE_FIRST_NASTY)
        } else {
            pick(rng, PEOPLE_FIRST)
        };
        let last = if rng.random_bool(nasty_rate) {
            pick(rng, PEOPLE_LAST_NASTY)
        } else {
            pick(rng, PEOPLE_LAST)
        };
        (first.to_string(), last.to_string())
    }

    /// Fills the tab's custom fields (~70% filled) with values of their type.
    fn fill_custom(&self, rng: &mut ChaCha8Rng, tab: &str, rec: &mut Record) {
        let def = &self.t.tabs[self.ti(tab)].def;
        for (i, f) in def.fields.iter().enumerate() {
            if !f.role.as_deref().is_some_and(|r| r.starts_with("custom_")) || rng.random_bool(0.3)
            {
                continue;
            }
            let v = match f.field_type {
                FieldType::Text => json!(format!(
                    "{}-{:05}",
                    pick(rng, &["AC", "REF", "X", "ÉT", "00"]),
                    rng.random_range(0..100_000)
                )),
                FieldType::Textarea => {
                    json!(format!(
                        "{}\n{}",
                        pick(rng, SENTENCES),
                        if rng.random_bool(0.3) {
                            pick(rng, SENTENCES)
                        } else {
                            ""
                        }
                    ))
                }
                FieldType::Number => json!(rng.random_range(-5..5000i64)),
                FieldType::Decimal => json!(rng.random_range(0..10_000_000i64) as f64 / 100.0),
                FieldType::Date => {
                    let d = ts(self.anchor + rng.random_range(-3 * YEAR_SECS..YEAR_SECS))
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .date();
                    json!(d.to_string())
                }
                FieldType::Datetime => {
                    json!(self.anchor + rng.random_range(-3 * YEAR_SECS..YEAR_SECS / 2))
                }
                FieldType::Dropdown => json!(pick(rng, &f.options)),
                FieldType::Multiselect => {
                    let mut chosen: Vec<&String> =
                        f.options.iter().filter(|_| rng.random_bool(0.35)).collect();
                    chosen.dedup();
                    json!(chosen)
                }
                FieldType::Checkbox => json!(if rng.random_bool(0.3) { "1" } else { "0" }),
                FieldType::Email => json!(format!(
                    "billing{}@{}",
                    rng.random_range(1..999),
                    pick(rng, &["example.com", "example.org", "mail.example.net"])
                )),
                FieldType::Phone => json!(random_phone(rng)),
                FieldType::Url => json!(format!(
                    "https://{}.example.com/{}",
                    pick(rng, &["portal", "www", "docs"]),
                    rng.random_range(1..9999)
                )),
                FieldType::UserLink => json!(self.any_user(rng)),
                FieldType::LinkedRecord => {
                    let target = f.linked_tab.as_deref().unwrap_or("");
                    match self.ids.get(target) {
                        Some(ids) if !ids.is_empty() => json!(*pick(rng, ids)),
                        _ => Value::Null,
                    }
                }
            };
            rec.set(i, v);
        }
    }

    /// Adds a generated attachment to `rec`; returns its id.
    fn attach(
        &mut self,
        rng: &mut ChaCha8Rng,
        tab: &str,
        rec: &mut Record,
        file_name: &str,
        size: u64,
    ) -> u64 {
        let id = self.t.alloc_attachment_id();
        let draw: f64 = rng.random();
        let mut mode = if draw < 0.6 {
            Md5Mode::Right
        } else if draw < 0.9 {
            Md5Mode::Absent
        } else {
            Md5Mode::Wrong
        };
        if size > LARGE_FILE_BYTES && matches!(mode, Md5Mode::Right) {
            mode = Md5Mode::Absent;
        }
        let actual = if size < EAGER_MD5_BYTES
            || (matches!(mode, Md5Mode::Right) && size <= LARGE_FILE_BYTES)
        {
            Some(BlobGen::new(self.t.seed, id, file_name, size).md5())
        } else {
            None
        };
        let declared = match mode {
            Md5Mode::Right => {
                let a = actual.clone().expect("computed for right md5");
                Some(if rng.random_bool(0.1) {
                    a.to_uppercase()
                } else {
                    a
                })
            }
            Md5Mode::Absent => None,
            Md5Mode::Wrong => Some(hex32(rng)),
        };
        self.t.attachments.insert(
            id,
            Attachment {
                id,
                tab: tab.to_string(),
                record_id: rec.id,
                file_name: file_name.to_string(),
                size,
                md5_declared: declared,
                md5_actual: actual,
                content: Content::Generated,
            },
        );
        rec.attachments.push(id);
        id
    }

    fn identities(&mut self, rng: &mut ChaCha8Rng) {
        let n = (self.tickets / 40).max(8);
        let pattern = rng.random_range(0..3);
        self.mail_domain = *pick(
            rng,
            &[
                "acme-support.example.com",
                "helpdesk.acme.example",
                "acme.example.org",
            ],
        );
        let mut taken = HashSet::new();
        for i in 0..n {
            let (first, last) = self.person(rng, 0.08);
            let (fs, ls) = (ascii_slug(&first), ascii_slug(&last));
            let (fs, ls) = (
                if fs.is_empty() {
                    "user".to_string()
                } else {
                    fs
                },
                if ls.is_empty() { format!("u{i}") } else { ls },
            );
            let base = match pattern {
                0 => format!("{}{}", &fs[..1], ls),
                1 => format!("{fs}.{ls}"),
                _ => format!("{fs}_{ls}"),
            };
            let mut username = base.clone();
            let mut k = 2;
            while !taken.insert(username.clone()) {
                username = format!("{base}{k}");
                k += 1;
            }
            let email = if i == 3 {
                String::new()
            } else if rng.random_bool(0.05) {
                format!(
                    "{}@{}",
                    username.to_uppercase(),
                    self.mail_domain.to_uppercase()
                )
            } else {
                format!("{username}@{}", self.mail_domain)
            };
            let inactive = i == n - 1 || (i > 0 && rng.random_bool(0.1));
            if inactive {
                self.inactive_usernames.push(username.clone());
            } else {
                self.active_usernames.push(username.clone());
            }
            self.usernames.push(username);
            self.user_emails.push(email);
            self.user_names.push((first, last));
        }
    }

    fn groups(&mut self, rng: &mut ChaCha8Rng) {
        let n = rng.random_range(4..=8usize).min(GROUP_NAMES.len());
        let perms = self.options("Groups", "permissions");
        let admin = self.usernames[0].clone();
        let mut names: Vec<&str> = GROUP_NAMES.to_vec();
        names.retain(|n| *n != "API Users");
        for i in 0..n {
            let created = self.random_time(rng, 4);
            let modified = self.later(rng, created, YEAR_SECS);
            let mut rec = self.new_record("Groups", &admin, created, modified);
            let name = if i == 0 {
                "API Users".to_string()
            } else {
                names.remove(rng.random_range(0..names.len())).to_string()
            };
            self.set(&mut rec, "Groups", "name", json!(name));
            self.set(
                &mut rec,
                "Groups",
                "description",
                json!(format!("<p>Members of {name}.</p>")),
            );
            let mut p: Vec<String> = perms
                .iter()
                .filter(|_| rng.random_bool(0.4))
                .cloned()
                .collect();
            if i == 0 && !p.contains(&perms[0]) {
                p.insert(0, perms[0].clone());
            }
            self.set(&mut rec, "Groups", "permissions", json!(p));
            self.fill_custom(rng, "Groups", &mut rec);
            self.insert("Groups", rec);
        }
    }

    fn users(&mut self, rng: &mut ChaCha8Rng) {
        let roles = self.options("Users", "role");
        let groups = self.ids["Groups"].clone();
        let names = std::mem::take(&mut self.user_names);
        for (i, username) in self.usernames.clone().iter().enumerate() {
            let created = self.random_time(rng, 4);
            let modified = self.later(rng, created, YEAR_SECS);
            let by = self.usernames[0].clone();
            let mut rec = self.new_record("Users", &by, created, modified);
            let (first, last) = &names[i];
            self.set(&mut rec, "Users", "username", json!(username));
            self.set(&mut rec, "Users", "first_name", json!(first));
            self.set(&mut rec, "Users", "last_name", json!(last));
            let email = &self.user_emails[i];
            self.set(
                &mut rec,
                "Users",
                "email",
                if email.is_empty() {
                    Value::Null
                } else {
                    json!(email)
                },
            );
            let role = if i == 0 {
                &roles[0]
            } else if rng.random_bool(0.15) {
                &roles[1]
            } else if rng.random_bool(0.1) {
                &roles[3]
            } else {
                &roles[2]
            };
            self.set(&mut rec, "Users", "role", json!(role));
            let active = self.active_usernames.contains(username);
            self.set(
                &mut rec,
                "Users",
                "active",
                json!(if active { "1" } else { "0" }),
            );
            self.set(&mut rec, "Users", "group", json!(*pick(rng, &groups)));
            self.set(
                &mut rec,
                "Users",
                "phone",
                json!(format!("x{}", rng.random_range(100..999))),
            );
            self.set(
                &mut rec,
                "Users",
                "title",
                json!(pick(
                    rng,
                    &[
                        "Support Engineer",
                        "Team Lead",
                        "Billing Specialist",
                        "Intern",
                        "Director of Support"
                    ]
                )),
            );
            self.fill_custom(rng, "Users", &mut rec);
            self.insert("Users", rec);
        }
    }

    fn organizations(&mut self, rng: &mut ChaCha8Rng) {
        let n = (self.tickets / 10).max(3);
        for i in 0..n {
            let created = self.random_time(rng, 4);
            let modified = self.later(rng, created, 2 * YEAR_SECS);
            let by = self.active_user(rng);
            let mut rec = self.new_record("Organizations", &by, created, modified);
            let base = format!(
                "{} {} {}",
                pick(rng, ORG_ADJ),
                pick(rng, ORG_NOUN),
                pick(rng, ORG_SUFFIX)
            );
            let name = match i {
                1 => format!(
                    "{base} — {}",
                    "International Holdings and Subsidiaries of the Greater Metropolitan Area "
                        .repeat(3)
                ),
                2 => ORG_NASTY[2].to_string(),
                3 => ORG_NASTY[4].to_string(),
                4 => ORG_NASTY[3].to_string(),
                _ if rng.random_bool(0.04) => pick(rng, ORG_NASTY).to_string(),
                _ if rng.random_bool(0.005) => format!("{base} {}", "Very Long Name ".repeat(15)),
                _ => base,
            };
            let slug = {
                let s = ascii_slug(&name);
                let s = if s.is_empty() {
                    format!("org{i}")
                } else {
                    s.chars().take(20).collect()
                };
                format!("{s}{i}")
            };
            self.set(&mut rec, "Organizations", "name", json!(name));
            self.set(&mut rec, "Organizations", "phone", json!(random_phone(rng)));
            if rng.random_bool(0.8) {
                self.set(
                    &mut rec,
                    "Organizations",
                    "email",
                    json!(format!("info@{slug}.example.com")),
                );
            }
            if rng.random_bool(0.85) {
                let site = if rng.random_bool(0.2) {
                    format!("{slug}.example.com")
                } else {
                    format!("https://www.{slug}.example.com")
                };
                self.set(&mut rec, "Organizations", "website", json!(site));
            }
            let (city, state, country) = *pick(rng, CITIES);
            self.set(
                &mut rec,
                "Organizations",
                "street",
                json!(format!(
                    "{} {}",
                    rng.random_range(1..9999),
                    pick(rng, STREETS)
                )),
            );
            self.set(&mut rec, "Organizations", "city", json!(city));
            self.set(
                &mut rec,
                "Organizations",
                "state",
                if state.is_empty() {
                    Value::Null
                } else {
                    json!(state)
                },
            );
            self.set(
                &mut rec,
                "Organizations",
                "zip",
                json!(format!("{:05}", rng.random_range(0..99999))),
            );
            self.set(&mut rec, "Organizations", "country", json!(country));
            self.fill_custom(rng, "Organizations", &mut rec);
            if i == 1 || rng.random_bool(0.03) {
                let name = *pick(rng, ATTACH_NAMES);
                let size = typical_size(rng);
                self.attach(rng, "Organizations", &mut rec, name, size);
            }
            self.insert("Organizations", rec);
        }
    }

    fn contacts(&mut self, rng: &mut ChaCha8Rng) {
        let n = (self.tickets / 3).max(6);
        let orgs = self.ids["Organizations"].clone();
        let org_idx = self.fi("Organizations", "website");
        let email_i = self.fi("Contacts", "email");
        let org_i = self.fi("Contacts", "organization");
        for i in 0..n {
            let created = self.random_time(rng, 3);
            let modified = self.later(rng, created, YEAR_SECS);
            let by = self.active_user(rng);
            let mut rec = self.new_record("Contacts", &by, created, modified);
            let (first, last) = self.person(rng, 0.12);
            let org = if i == 1 || rng.random_bool(0.12) {
                None
            } else {
                Some(*pick(rng, &orgs))
            };
            let domain = org
                .and_then(|o| {
                    self.t.tabs[self.ti("Organizations")].records[&o]
                        .value(org_idx)
                        .as_str()
                        .map(str::to_string)
                })
                .map(|w| {
                    w.trim_start_matches("https://")
                        .trim_start_matches("www.")
                        .to_string()
                })
                .unwrap_or_else(|| {
                    pick(
                        rng,
                        &[
                            "gmail.example.com",
                            "outlook.example.com",
                            "yahoo.example.com",
                        ],
                    )
                    .to_string()
                });
            let local = {
                let (f, l) = (ascii_slug(&first), ascii_slug(&last));
                match (f.is_empty(), l.is_empty()) {
                    (false, false) => format!("{f}.{l}"),
                    (false, true) => format!("{f}{i}"),
                    (true, false) => format!("{l}{i}"),
                    (true, true) => format!("contact{i}"),
                }
            };
            let no_email = i == 0 || rng.random_bool(0.05);
            self.set(&mut rec, "Contacts", "first_name", json!(first));
            self.set(
                &mut rec,
                "Contacts",
                "last_name",
                if last.is_empty() {
                    json!("(unknown)")
                } else {
                    json!(last)
                },
            );
            if !no_email {
                let e = if rng.random_bool(0.03) {
                    format!(" {local}@{domain} ")
                } else {
                    format!(
                        "{local}{}@{domain}",
                        if rng.random_bool(0.5) {
                            String::new()
                        } else {
                            i.to_string()
                        }
                    )
                };
                self.set(&mut rec, "Contacts", "email", json!(e));
            }
            // Same person filed under two organizations: same email, different org.
            if (i == 3 || (i > 3 && rng.random_bool(0.01))) && orgs.len() >= 2 {
                let prev: Vec<(u64, String, Option<u64>)> = self.t.tabs[self.ti("Contacts")]
                    .records
                    .values()
                    .filter_map(|r| {
                        Some((
                            r.id,
                            r.value(email_i).as_str()?.to_string(),
                            r.value(org_i).as_u64(),
                        ))
                    })
                    .take(50)
                    .collect();
                if let Some((_, email, their_org)) = prev.first().cloned() {
                    let other = orgs
                        .iter()
                        .copied()
                        .find(|o| Some(*o) != their_org)
                        .unwrap_or(orgs[0]);
                    self.set(&mut rec, "Contacts", "email", json!(email));
                    rec.set(org_i, json!(other));
                }
            }
            if rec.value(org_i).is_null()
                && let Some(o) = org
            {
                rec.set(org_i, json!(o));
            }
            if rng.random_bool(0.9) {
                self.set(&mut rec, "Contacts", "phone", json!(random_phone(rng)));
            }
            if rng.random_bool(0.5) {
                self.set(&mut rec, "Contacts", "mobile", json!(random_phone(rng)));
            }
            self.set(
                &mut rec,
                "Contacts",
                "title",
                json!(pick(
                    rng,
                    &[
                        "CTO",
                        "Office Manager",
                        "Accountant",
                        "Owner",
                        "IT Admin",
                        "Ingénieure",
                        ""
                    ]
                )),
            );
            self.fill_custom(rng, "Contacts", &mut rec);
            if i == 2 || rng.random_bool(0.02) {
                let name = *pick(rng, ATTACH_NAMES);
                let size = typical_size(rng);
                self.attach(rng, "Contacts", &mut rec, name, size);
            }
            self.insert("Contacts", rec);
        }
    }

    fn tickets(&mut self, rng: &mut ChaCha8Rng) -> Vec<TicketInfo> {
        let statuses = self.options("Tickets", "status");
        let priorities = self.options("Tickets", "priority");
        let departments = self.options("Tickets", "department");
        let channels = self.options("Tickets", "channel");
        let tags = self.options("Tickets", "tags");
        let contacts = self.ids["Contacts"].clone();
        let c_org = self.fi("Contacts", "organization");
        let c_email = self.fi("Contacts", "email");
        let mut infos = Vec::with_capacity(self.tickets);
        for i in 0..self.tickets {
            let created = self.random_time(rng, 3);
            let modified = self.later(rng, created, 60 * 86_400);
            let by = if rng.random_bool(0.005) {
                "former.agent".to_string()
            } else {
                self.active_user(rng)
            };
            let mut rec = self.new_record("Tickets", &by, created, modified);
            let subject =
                pick(rng, SUBJECTS).replace("{n}", &rng.random_range(100..99999).to_string());
            let subject = if i == 1 || rng.random_bool(0.01) {
                format!("[TEST] {subject}")
            } else if rng.random_bool(0.003) {
                format!("{subject} {}", "and more details ".repeat(20))
            } else {
                subject
            };
            let contact = *pick(rng, &contacts);
            let crec = &self.t.tabs[self.ti("Contacts")].records[&contact];
            let (contact_org, contact_email) = (
                crec.value(c_org).as_u64(),
                crec.value(c_email)
                    .as_str()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            );
            self.set(&mut rec, "Tickets", "subject", json!(subject));
            self.set(
                &mut rec,
                "Tickets",
                "description",
                json!(description_html(rng)),
            );
            // Old tickets are mostly closed; recent ones spread over the workflow.
            let status = if created < self.anchor - YEAR_SECS / 4 && rng.random_bool(0.85) {
                statuses[statuses.len() - 1 - rng.random_range(0..2usize)].clone()
            } else {
                pick(rng, &statuses).clone()
            };
            self.set(&mut rec, "Tickets", "status", json!(status));
            let pw = rng.random_range(0..100);
            let prio = if pw < 30 {
                0
            } else if pw < 75 {
                1
            } else if pw < 93 {
                2
            } else {
                3
            };
            self.set(&mut rec, "Tickets", "priority", json!(priorities[prio]));
            self.set(
                &mut rec,
                "Tickets",
                "department",
                json!(pick(rng, &departments)),
            );
            let assignee = if i == 0 {
                Some(self.inactive_usernames[0].clone())
            } else if rng.random_bool(0.08) {
                None
            } else {
                Some(self.any_user(rng))
            };
            if let Some(a) = &assignee {
                self.set(&mut rec, "Tickets", "assignee", json!(a));
            }
            self.set(&mut rec, "Tickets", "contact", json!(contact));
            let org = if rng.random_bool(0.05) {
                Some(*pick(rng, &self.ids["Organizations"]))
            } else {
                contact_org
            };
            if let Some(o) = org {
                self.set(&mut rec, "Tickets", "organization", json!(o));
            }
            self.set(
                &mut rec,
                "Tickets",
                "spam",
                json!(if i == 2 || rng.random_bool(0.01) {
                    "1"
                } else {
                    "0"
                }),
            );
            self.set(&mut rec, "Tickets", "channel", json!(pick(rng, &channels)));
            let t: Vec<&String> = tags.iter().filter(|_| rng.random_bool(0.12)).collect();
            self.set(&mut rec, "Tickets", "tags", json!(t));
            if rng.random_bool(0.4) {
                self.set(
                    &mut rec,
                    "Tickets",
                    "due",
                    json!(created + rng.random_range(3_600..14 * 86_400)),
                );
            }
            self.fill_custom(rng, "Tickets", &mut rec);
            if rng.random_bool(0.3) {
                let count = match rng.random_range(0..10) {
                    0..=6 => 1,
                    7..=8 => 2,
                    _ => 3,
                };
                for _ in 0..count {
                    let name = *pick(rng, ATTACH_NAMES);
                    let size = typical_size(rng);
                    self.attach(rng, "Tickets", &mut rec, name, size);
                }
            }
            infos.push(TicketInfo {
                id: rec.id,
                created,
                subject,
                contact_email,
                assignee: assignee.unwrap_or_else(|| self.active_usernames[0].clone()),
            });
            self.insert("Tickets", rec);
        }
        infos
    }

    fn activities(&mut self, rng: &mut ChaCha8Rng, infos: &[TicketInfo]) {
        let types = self.options("Activities", "type");
        let dirs = self.options("Activities", "direction");
        let dispositions = self.options("Activities", "disposition");
        let support = format!("support@{}", self.mail_domain);
        let tickets_ti = self.ti("Tickets");
        let mut counter = 0usize;
        for info in infos {
            let n = if rng.random_bool(0.9) {
                rng.random_range(0..=7)
            } else {
                rng.random_range(8..=15)
            };
            let mut at = info.created;
            let mut last = info.created;
            for _ in 0..n {
                at = self.later(rng, at, 3 * 86_400).max(at + 1);
                last = at;
                let author = if rng.random_bool(0.005) {
                    "former.agent".to_string()
                } else if rng.random_bool(0.6) {
                    info.assignee.clone()
                } else {
                    self.any_user(rng)
                };
                let modified = if rng.random_bool(0.1) {
                    self.later(rng, at, 86_400)
                } else {
                    at
                };
                let mut rec = self.new_record("Activities", &author, at, modified);
                self.set(&mut rec, "Activities", "ticket", json!(info.id));
                let special = counter < 4;
                let kind = if special {
                    1
                } else {
                    let r = rng.random_range(0..100);
                    if r < 55 {
                        1
                    } else if r < 80 {
                        2
                    } else {
                        0
                    }
                };
                self.set(&mut rec, "Activities", "type", json!(types[kind]));
                match kind {
                    1 => {
                        let inbound = rng.random_bool(0.55);
                        self.set(
                            &mut rec,
                            "Activities",
                            "direction",
                            json!(dirs[if inbound { 0 } else { 1 }]),
                        );
                        let agent_email = format!("{author}@{}", self.mail_domain);
                        let customer = if info.contact_email.is_empty() {
                            "unknown@example.com".to_string()
                        } else {
                            info.contact_email.clone()
                        };
                        let (from, to) = if inbound {
                            (customer.clone(), support.clone())
                        } else {
                            (agent_email, customer.clone())
                        };
                        let from = if rng.random_bool(0.3) {
                            format!("\"{}\" <{from}>", from.split('@').next().unwrap_or(""))
                        } else {
                            from
                        };
                        let to = if rng.random_bool(0.1) {
                            format!("{to}, billing@{}", self.mail_domain)
                        } else {
                            to
                        };
                        self.set(&mut rec, "Activities", "from", json!(from));
                        self.set(&mut rec, "Activities", "to", json!(to));
                        if rng.random_bool(0.35) {
                            let k = rng.random_range(1..=3);
                            let sep = if rng.random_bool(0.5) { ", " } else { "," };
                            let list: Vec<String> = (0..k)
                                .map(|j| {
                                    format!(
                                        "cc{}.{j}@{}",
                                        rng.random_range(1..500),
                                        pick(
                                            rng,
                                            &["example.com", "example.org", self.mail_domain]
                                        )
                                    )
                                })
                                .collect();
                            self.set(&mut rec, "Activities", "cc", json!(list.join(sep)));
                        }
                        let prefix = pick(rng, &["Re: ", "RE: ", "Fwd: ", "", "Re: Re: ", "AW: "]);
                        self.set(
                            &mut rec,
                            "Activities",
                            "subject",
                            json!(format!("{prefix}{}", info.subject)),
                        );
                        let body = self.email_body(rng, &mut rec, counter, at);
                        self.set(&mut rec, "Activities", "body", json!(body));
                    }
                    0 => {
                        let d = rng.random_range(0..dispositions.len());
                        self.set(
                            &mut rec,
                            "Activities",
                            "disposition",
                            json!(dispositions[d]),
                        );
                        let duration = if matches!(d, 2 | 3) {
                            0
                        } else {
                            rng.random_range(5..3_600)
                        };
                        self.set(&mut rec, "Activities", "duration", json!(duration));
                        self.set(
                            &mut rec,
                            "Activities",
                            "direction",
                            json!(dirs[rng.random_range(0..2usize)]),
                        );
                        self.set(
                            &mut rec,
                            "Activities",
                            "subject",
                            json!(format!("Call about: {}", info.subject)),
                        );
                        self.set(
                            &mut rec,
                            "Activities",
                            "body",
                            json!(format!(
                                "<p>Call summary: {}</p><ul><li>Next step: {}</li></ul>",
                                pick(rng, SENTENCES),
                                pick(rng, TASK_SUBJECTS)
                            )),
                        );
                    }
                    _ => {
                        let body = if rng.random_bool(0.1) {
                            "Plain text note,\nno markup at all.\n\t-- signed".to_string()
                        } else {
                            format!(
                                "<p><b>Internal:</b> {}</p>{}",
                                pick(rng, SENTENCES),
                                if rng.random_bool(0.2) {
                                    "<p>@mention <a href=\"https://wiki.example.com/kb/42\">KB-42</a></p>"
                                } else {
                                    ""
                                }
                            )
                        };
                        self.set(&mut rec, "Activities", "body", json!(body));
                    }
                }
                self.fill_custom(rng, "Activities", &mut rec);
                if rng.random_bool(0.05) {
                    let name = *pick(rng, ATTACH_NAMES);
                    let size = typical_size(rng);
                    self.attach(rng, "Activities", &mut rec, name, size);
                }
                counter += 1;
                self.insert("Activities", rec);
            }
            if n > 0 {
                let t = self.t.tabs[tickets_ti]
                    .records
                    .get_mut(&info.id)
                    .expect("ticket exists");
                if t.modified_at.as_second() < last {
                    t.modified_at = ts(last);
                    t.modified_by = t.created_by.clone();
                }
            }
        }
    }

    /// An email body: quoted replies, tables, lists, inline images (own, cid:, foreign), broken HTML.
    fn email_body(
        &mut self,
        rng: &mut ChaCha8Rng,
        rec: &mut Record,
        counter: usize,
        at: i64,
    ) -> String {
        let mut html = String::with_capacity(1024);
        html.push_str(&format!(
            "<div>Hi team,</div><p>{}</p>",
            pick(rng, SENTENCES)
        ));
        let roll: f64 = rng.random();
        if counter == 0 || (counter > 3 && roll < 0.08) {
            let name = if rng.random_bool(0.5) {
                "image001.png"
            } else {
                "screenshot 2024-01-05 at 10.15.png"
            };
            let size = rng.random_range(1_024..65_536);
            let aid = self.attach(rng, "Activities", rec, name, size);
            let url = self.t.attachments[&aid].url_template();
            html.push_str(&format!(
                "<p><img src=\"{url}\" alt=\"inline image\" width=\"400\"></p>"
            ));
        }
        if counter == 1 || (counter > 3 && (0.08..0.13).contains(&roll)) {
            html.push_str("<p><img src=\"cid:image002.png@01DA1B2C.3D4E5F60\"></p>");
        }
        if counter == 2 || (counter > 3 && (0.13..0.14).contains(&roll)) {
            html.push_str(
                "<img src=\"http://169.254.169.254/latest/meta-data/iam/security-credentials/\">",
            );
        }
        if counter == 3 || (counter > 3 && (0.14..0.16).contains(&roll)) {
            html.push_str(&format!("<img src=\"https://tracker.example.net/pixel.gif?id={}\" width=\"1\" height=\"1\">", rng.random_range(1..1_000_000)));
        }
        match rng.random_range(0..10) {
            0 => html.push_str("<table border=\"1\"><tr><th>Order</th><th>Qty</th></tr><tr><td>A-1001</td><td>3</td></tr><tr><td>B-7</td><td>12</td></tr></table>"),
            1 => html.push_str("<ul><li>First<ul><li>Nested<ol><li>Deep</li></ol></li></ul></li><li>Second</li></ul>"),
            2 => html.push_str("<p>unclosed <b>bold <i>italic</p></td><div>stray close</span>"),
            3 => html.push_str("<style>p{color:red}</style><script>alert('x')</script><p>after script</p>"),
            _ => {}
        }
        if rng.random_bool(0.4) {
            let when = format_ts_utc(at - rng.random_range(3_600..5 * 86_400));
            html.push_str(&format!(
                "<div class=\"gmail_quote\">On {when}, Support &lt;support@{}&gt; wrote:<blockquote>{}</blockquote></div>",
                self.mail_domain,
                pick(rng, SENTENCES)
            ));
        }
        html.push_str("<p>-- <br>Sent from my phone</p>");
        html
    }

    fn big_files(&mut self, rng: &mut ChaCha8Rng) {
        let Some(tickets) = self.ids.get("Tickets").cloned().filter(|t| !t.is_empty()) else {
            return;
        };
        let n = 2 + (self.t.seed % 2) as usize;
        let ti = self.ti("Tickets");
        for (k, name) in BIG_NAMES.iter().enumerate().take(n) {
            let tid = *pick(rng, &tickets);
            let size = LARGE_FILE_BYTES + 1 + rng.random_range(0..5_000_000);
            let mut rec = self.t.tabs[ti].records.remove(&tid).expect("ticket exists");
            let aid = self.attach(rng, "Tickets", &mut rec, name, size);
            if k == 0 {
                // One large file declares a wrong checksum, the others none.
                self.t
                    .attachments
                    .get_mut(&aid)
                    .expect("just added")
                    .md5_declared = Some(hex32(rng));
            }
            self.t.tabs[ti].records.insert(tid, rec);
        }
    }

    fn tasks(&mut self, rng: &mut ChaCha8Rng) {
        let n = (self.tickets / 4).max(2);
        let statuses = self.options("Tasks", "status");
        let priorities = self.options("Tasks", "priority");
        let tickets = self.ids.get("Tickets").cloned().unwrap_or_default();
        for i in 0..n {
            let created = self.random_time(rng, 3);
            let modified = self.later(rng, created, 30 * 86_400);
            let by = self.active_user(rng);
            let mut rec = self.new_record("Tasks", &by, created, modified);
            self.set(
                &mut rec,
                "Tasks",
                "subject",
                json!(pick(rng, TASK_SUBJECTS)),
            );
            let due = ts(created + rng.random_range(86_400..30 * 86_400))
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date();
            if rng.random_bool(0.9) {
                self.set(&mut rec, "Tasks", "due", json!(due.to_string()));
            }
            self.set(&mut rec, "Tasks", "status", json!(pick(rng, &statuses)));
            self.set(&mut rec, "Tasks", "priority", json!(pick(rng, &priorities)));
            let owner = self.any_user(rng);
            self.set(&mut rec, "Tasks", "owner", json!(owner));
            if i != 0 && !tickets.is_empty() && !rng.random_bool(0.1) {
                self.set(&mut rec, "Tasks", "ticket", json!(*pick(rng, &tickets)));
            }
            self.set(
                &mut rec,
                "Tasks",
                "description",
                json!(format!("<p>{}</p>", pick(rng, SENTENCES))),
            );
            self.fill_custom(rng, "Tasks", &mut rec);
            self.insert("Tasks", rec);
        }
    }

    fn workflows(&mut self, rng: &mut ChaCha8Rng) {
        let n = rng.random_range(5..=15usize);
        let triggers = self.options("Workflows", "trigger");
        let mut names = WORKFLOW_NAMES.to_vec();
        for _ in 0..n {
            let created = self.random_time(rng, 4);
            let modified = self.later(rng, created, YEAR_SECS);
            let by = self.usernames[0].clone();
            let mut rec = self.new_record("Workflows", &by, created, modified);
            let name = names.remove(rng.random_range(0..names.len()));
            let tab = *pick(
                rng,
                &[
                    "Tickets",
                    "Tickets",
                    "Tickets",
                    "Contacts",
                    "Activities",
                    "Tasks",
                    "Organizations",
                ],
            );
            let (cond, action) = self.rule_text(rng, tab);
            self.set(&mut rec, "Workflows", "name", json!(name));
            self.set(&mut rec, "Workflows", "tab", json!(tab));
            self.set(
                &mut rec,
                "Workflows",
                "trigger",
                json!(pick(rng, &triggers)),
            );
            self.set(&mut rec, "Workflows", "conditions", json!(cond));
            self.set(&mut rec, "Workflows", "actions", json!(action));
            self.set(
                &mut rec,
                "Workflows",
                "active",
                json!(if rng.random_bool(0.8) { "1" } else { "0" }),
            );
            self.insert("Workflows", rec);
        }
    }

    /// A condition and an action written against the tab's real field names.
    fn rule_text(&self, rng: &mut ChaCha8Rng, tab: &str) -> (String, String) {
        let def = &self.t.tabs[self.ti(tab)].def;
        let dropdowns: Vec<&FieldDef> = def
            .fields
            .iter()
            .filter(|f| f.field_type == FieldType::Dropdown)
            .collect();
        let d = *pick(rng, &dropdowns);
        let d2 = *pick(rng, &dropdowns);
        let cond = format!(
            "{} = '{}' AND {} IN ('{}', '{}')",
            d.field_name,
            pick(rng, &d.options),
            d2.field_name,
            pick(rng, &d2.options),
            pick(rng, &d2.options)
        );
        let action = format!(
            "Set {} = '{}'; Send email to {}; Create Task 'Follow up' due +2d",
            d.field_name,
            pick(rng, &d.options),
            pick(
                rng,
                &["assignee", "account manager", "support-leads@example.com"]
            )
        );
        (cond, action)
    }

    fn views(&mut self, rng: &mut ChaCha8Rng) {
        let n = rng.random_range(5..=15usize);
        let mut names = VIEW_NAMES.to_vec();
        for _ in 0..n {
            let created = self.random_time(rng, 4);
            let modified = self.later(rng, created, YEAR_SECS);
            let by = self.any_user(rng);
            let mut rec = self.new_record("Views", &by, created, modified);
            let name = names.remove(rng.random_range(0..names.len()));
            let tab = *pick(
                rng,
                &[
                    "Tickets",
                    "Tickets",
                    "Tickets",
                    "Contacts",
                    "Activities",
                    "Tasks",
                    "Organizations",
                ],
            );
            let (filters, _) = self.rule_text(rng, tab);
            let def = &self.t.tabs[self.ti(tab)].def;
            let cols: Vec<&str> = def
                .fields
                .iter()
                .filter(|_| rng.random_bool(0.3))
                .map(|f| f.field_name.as_str())
                .take(8)
                .collect();
            let cols = format!("collection_id, {}", cols.join(", "));
            self.set(&mut rec, "Views", "name", json!(name));
            self.set(&mut rec, "Views", "tab", json!(tab));
            self.set(&mut rec, "Views", "filters", json!(filters));
            self.set(&mut rec, "Views", "columns", json!(cols));
            self.set(
                &mut rec,
                "Views",
                "shared",
                json!(if rng.random_bool(0.5) { "1" } else { "0" }),
            );
            self.set(&mut rec, "Views", "owner", json!(by));
            self.insert("Views", rec);
        }
    }

    /// ~2 field changes per ticket, chained so the last new value is the ticket's current value.
    fn history(&mut self, rng: &mut ChaCha8Rng) {
        let tickets_ti = self.ti("Tickets");
        let roles = ["status", "priority", "assignee", "department"];
        let fields: Vec<(usize, String, Vec<String>)> = roles
            .iter()
            .map(|r| {
                let i = self.fi("Tickets", r);
                let f = &self.t.tabs[tickets_ti].def.fields[i];
                let opts = if f.field_type == FieldType::UserLink {
                    self.usernames.clone()
                } else {
                    f.options.clone()
                };
                (i, f.field_name.clone(), opts)
            })
            .collect();
        let ticket_ids = self.ids.get("Tickets").cloned().unwrap_or_default();
        for tid in ticket_ids {
            let k = rng.random_range(0..=4usize);
            if k == 0 {
                continue;
            }
            let (created, modified, mut current) = {
                let t = &self.t.tabs[tickets_ti].records[&tid];
                let cur: Vec<String> = fields
                    .iter()
                    .map(|(i, _, _)| t.value(*i).as_str().unwrap_or("").to_string())
                    .collect();
                (t.created_at.as_second(), t.modified_at.as_second(), cur)
            };
            let mut times: Vec<i64> = (0..k)
                .map(|_| rng.random_range(created..=modified))
                .collect();
            times.sort_unstable();
            let mut entries = Vec::with_capacity(k);
            for at in times.iter().rev() {
                let f = rng.random_range(0..fields.len());
                let (_, name, opts) = &fields[f];
                let new = current[f].clone();
                let mut old = pick(rng, opts).clone();
                if old == new {
                    old = String::new();
                }
                current[f] = old.clone();
                entries.push((*at, name.clone(), old, new));
            }
            for (at, field, old, new) in entries.into_iter().rev() {
                let by = self.any_user(rng);
                let mut rec = self.new_record("ChangeHistory", &by, at, at);
                self.set(&mut rec, "ChangeHistory", "record_tab", json!("Tickets"));
                self.set(&mut rec, "ChangeHistory", "record_id", json!(tid));
                self.set(&mut rec, "ChangeHistory", "field", json!(field));
                self.set(
                    &mut rec,
                    "ChangeHistory",
                    "old_value",
                    if old.is_empty() {
                        Value::Null
                    } else {
                        json!(old)
                    },
                );
                self.set(
                    &mut rec,
                    "ChangeHistory",
                    "new_value",
                    if new.is_empty() {
                        Value::Null
                    } else {
                        json!(new)
                    },
                );
                self.set(&mut rec, "ChangeHistory", "changed_by", json!(by));
                self.set(&mut rec, "ChangeHistory", "changed_at", json!(at));
                self.insert("ChangeHistory", rec);
            }
        }
    }

    /// Related, converted and copied_from links (embedded ones are the linked_record fields).
    fn links(&mut self, rng: &mut ChaCha8Rng) {
        let tickets = self.ids.get("Tickets").cloned().unwrap_or_default();
        let contacts = self.ids.get("Contacts").cloned().unwrap_or_default();
        let activities = self.ids.get("Activities").cloned().unwrap_or_default();
        let orgs = self.ids.get("Organizations").cloned().unwrap_or_default();
        let tasks = self.ids.get("Tasks").cloned().unwrap_or_default();
        let mut push = |tab: &str, id: u64, link_tab: &str, lid: u64, lt: LinkType| {
            self.t.links.push(Link {
                tab: tab.into(),
                record_id: id,
                link_tab: link_tab.into(),
                link_record_id: lid,
                link_type: lt,
            });
        };
        for (i, &t) in tickets.iter().enumerate() {
            if i > 0 && (i == 1 || rng.random_bool(0.03)) {
                push(
                    "Tickets",
                    t,
                    "Tickets",
                    tickets[rng.random_range(0..i)],
                    LinkType::Related,
                );
            }
            if !activities.is_empty() && (i == 2 || rng.random_bool(0.02)) {
                push(
                    "Tickets",
                    t,
                    "Activities",
                    *pick(rng, &activities),
                    LinkType::Converted,
                );
            }
        }
        for (i, &c) in contacts.iter().enumerate() {
            if i > 0 && (i == 4 || rng.random_bool(0.01)) {
                push(
                    "Contacts",
                    c,
                    "Contacts",
                    contacts[rng.random_range(0..i)],
                    LinkType::CopiedFrom,
                );
            }
        }
        for &t in &tasks {
            if !orgs.is_empty() && rng.random_bool(0.05) {
                push(
                    "Tasks",
                    t,
                    "Organizations",
                    *pick(rng, &orgs),
                    LinkType::Related,
                );
            }
        }
    }
}

struct TicketInfo {
    id: u64,
    created: i64,
    subject: String,
    contact_email: String,
    assignee: String,
}

fn choose_name(rng: &mut ChaCha8Rng, names: &[&str], used: &HashSet<String>) -> String {
    let free: Vec<&&str> = names
        .iter()
        .filter(|n| !n.is_empty() && !used.contains(&field_name_from(n)))
        .collect();
    if free.is_empty() {
        return names[0].to_string();
    }
    pick(rng, &free).to_string()
}

fn typical_size(rng: &mut ChaCha8Rng) -> u64 {
    let r: f64 = rng.random();
    if r < 0.04 {
        0
    } else if r < 0.80 {
        rng.random_range(1_024..32_768)
    } else if r < 0.97 {
        rng.random_range(32_768..262_144)
    } else {
        rng.random_range(262_144..2_097_152)
    }
}

fn random_phone(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..5) {
        0 => format!(
            "+1 ({}) 555-{:04}",
            rng.random_range(200..999),
            rng.random_range(0..10_000)
        ),
        1 => format!("+44 20 7946 {:04}", rng.random_range(0..10_000)),
        2 => format!(
            "555.010.{:04} x{}",
            rng.random_range(0..10_000),
            rng.random_range(1..999)
        ),
        3 => format!("+972-3-{:07}", rng.random_range(0..10_000_000)),
        _ => format!("0{}", rng.random_range(100_000_000u64..999_999_999)),
    }
}

fn format_ts_utc(secs: i64) -> String {
    ts(secs).strftime("%a, %b %-d, %Y at %-I:%M %p").to_string()
}

fn description_html(rng: &mut ChaCha8Rng) -> String {
    let s1 = pick(rng, SENTENCES);
    let s2 = pick(rng, SENTENCES);
    match rng.random_range(0..20) {
        0..=5 => format!("<p>Hello,</p><p>{s1}</p><p>{s2}</p><p>Thanks,<br>Customer</p>"),
        6..=8 => format!("Hi,\n\n{s1}\n\nRegards"),
        9..=10 => format!(
            "<p>{s1}</p><ul><li>Steps: open app</li><li>Click <em>Export</em><ul><li>choose CSV</li></ul></li></ul>"
        ),
        11 => format!(
            "<p>{s1}</p><table><tr><td>Invoice</td><td>Amount</td></tr><tr><td>INV-1</td><td>$1,234.50</td></tr></table>"
        ),
        12 => format!("<p dir=\"rtl\">{s1}</p>"),
        13 => format!("<div><p>{s1}<b>bold</div></td><p>{s2}"),
        14 => String::new(),
        15 => format!("<p>{s1}</p>").repeat(120),
        16 => format!(
            "<p>{s1} <a href=\"javascript:alert(1)\">click</a> <img src=\"https://tracker.example.net/pixel.gif\"></p>"
        ),
        _ => format!("<p>{s1}</p><p>{s2}</p>"),
    }
}
