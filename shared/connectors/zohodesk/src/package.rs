//! Import-package mode: writes Zoho Desk's migration CSV package, which keeps original authors and
//! times exactly (REST cannot back-date anything).
//!
//! Layout of the package directory:
//! - `<Module>_<NNN>.csv` per module (Agents, Accounts, Contacts, Tickets, Threads,
//!   Ticket_Comments, Tasks), keyed by agentExtId / AccountExtId / ContactExtId / TicketExtId /
//!   ThreadExtId / CommentExtId / TaskExtId (ExtId = the source id); a new numbered file starts
//!   whenever the next row would pass the row or byte limit (10,000 rows / 30 MB by default), or
//!   when a custom field appears that the open file has no column for;
//! - references by ExtId (Contacts.AccountExtId, Tickets.ContactExtId, Threads.TicketExtId, ...);
//!   agents are referenced by their lower-case email (or username) as agentExtId;
//! - times as `YYYY-MM-DDTHH:MM:SS.000Z`; custom fields as columns named by label;
//! - attachments in `attachments/<Module>/<ExtId>/<file>`, with later batch folders
//!   `attachments_002/...` once a folder would pass 10 GB; each row's `Attachments` column lists
//!   its file names (`;`-separated) and `manifest.json` gives every file's folder, size and MD5.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use deskshift_core::model::{
    Account, Activity, ActivityKind, Agent, AttachmentRef, CanonicalRecord, Contact, CustomValues,
    ObjectKind, Person, Task, Ticket,
};
use deskshift_core::ports::{
    CustomFieldSpec, DestField, Destination, DestinationInfo, LoadContext, Spend,
};
use deskshift_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::convert::{package_time, safe_file_name};
use crate::rest::{
    DEFAULT_TASK_PRIORITIES, DEFAULT_TASK_STATUSES, DEFAULT_TICKET_CHANNELS,
    DEFAULT_TICKET_PRIORITIES, DEFAULT_TICKET_STATUSES, zoho_field_type,
};

pub const PACKAGE_PLATFORM: &str = "zohodesk-import";

/// Batch limits of the package (Zoho's migration spec: 10,000 rows / 30 MB per file; 10 GB of
/// attachments per batch folder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageLimits {
    pub max_rows: usize,
    pub max_bytes: u64,
    pub max_attachment_bytes: u64,
}

impl Default for PackageLimits {
    fn default() -> Self {
        PackageLimits {
            max_rows: 10_000,
            max_bytes: 30 * 1024 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

/// The files of the package, one CSV family each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Module {
    Agents,
    Accounts,
    Contacts,
    Tickets,
    Threads,
    TicketComments,
    Tasks,
}

impl Module {
    pub const ALL: [Module; 7] = [
        Module::Agents,
        Module::Accounts,
        Module::Contacts,
        Module::Tickets,
        Module::Threads,
        Module::TicketComments,
        Module::Tasks,
    ];

    /// File-name stem: `Tickets` gives `Tickets_001.csv`.
    pub fn file_stem(self) -> &'static str {
        match self {
            Module::Agents => "Agents",
            Module::Accounts => "Accounts",
            Module::Contacts => "Contacts",
            Module::Tickets => "Tickets",
            Module::Threads => "Threads",
            Module::TicketComments => "Ticket_Comments",
            Module::Tasks => "Tasks",
        }
    }

    /// The ExtId column, always the first.
    pub fn key_column(self) -> &'static str {
        match self {
            Module::Agents => "agentExtId",
            Module::Accounts => "AccountExtId",
            Module::Contacts => "ContactExtId",
            Module::Tickets => "TicketExtId",
            Module::Threads => "ThreadExtId",
            Module::TicketComments => "CommentExtId",
            Module::Tasks => "TaskExtId",
        }
    }

    /// Standard columns, key first; custom columns and `Attachments` follow.
    pub fn standard_columns(self) -> &'static [&'static str] {
        match self {
            Module::Agents => &[
                "agentExtId",
                "First Name",
                "Last Name",
                "Email",
                "Name",
                "Active",
                "Role",
                "Source ID",
            ],
            Module::Accounts => &[
                "AccountExtId",
                "Account Name",
                "Phone",
                "Email",
                "Website",
                "Street",
                "City",
                "State",
                "Code",
                "Country",
                "Description",
            ],
            Module::Contacts => &[
                "ContactExtId",
                "AccountExtId",
                "First Name",
                "Last Name",
                "Email",
                "Phone",
                "Mobile",
            ],
            Module::Tickets => &[
                "TicketExtId",
                "ContactExtId",
                "AccountExtId",
                "Subject",
                "Description",
                "Status",
                "Priority",
                "Department",
                "Channel",
                "Category",
                "Due Date",
                "Tags",
                "AssigneeExtId",
                "Created By",
                "Created Time",
                "Modified Time",
            ],
            Module::Threads => &[
                "ThreadExtId",
                "TicketExtId",
                "Direction",
                "Channel",
                "From",
                "To",
                "Cc",
                "Subject",
                "Content",
                "Content Type",
                "AgentExtId",
                "Author",
                "Created Time",
            ],
            Module::TicketComments => &[
                "CommentExtId",
                "TicketExtId",
                "Comment Type",
                "Call Disposition",
                "Call Duration",
                "Content",
                "Is Public",
                "AgentExtId",
                "Author",
                "Commented Time",
            ],
            Module::Tasks => &[
                "TaskExtId",
                "TicketExtId",
                "Subject",
                "Description",
                "Due Date",
                "Status",
                "Priority",
                "Department",
                "OwnerExtId",
                "Created Time",
            ],
        }
    }

    fn has_attachments(self) -> bool {
        matches!(
            self,
            Module::Accounts
                | Module::Contacts
                | Module::Tickets
                | Module::Threads
                | Module::TicketComments
        )
    }

    fn for_custom(kind: ObjectKind) -> &'static [Module] {
        match kind {
            ObjectKind::Account => &[Module::Accounts],
            ObjectKind::Contact => &[Module::Contacts],
            ObjectKind::Ticket => &[Module::Tickets],
            ObjectKind::Activity => &[Module::Threads, Module::TicketComments],
            ObjectKind::Task => &[Module::Tasks],
            _ => &[],
        }
    }

    fn parse_stem(stem: &str) -> Option<Module> {
        Module::ALL.into_iter().find(|m| m.file_stem() == stem)
    }
}

/// The column of a custom field: its label, unless a standard column has that name.
pub fn custom_column(module: Module, label: &str) -> String {
    if module
        .standard_columns()
        .iter()
        .any(|c| c.eq_ignore_ascii_case(label))
        || label.eq_ignore_ascii_case("Attachments")
    {
        format!("{label} (custom)")
    } else {
        label.to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub module: Module,
    pub path: String,
    pub rows: usize,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestAttachment {
    pub module: Module,
    pub ext_id: String,
    /// The source's attachment id.
    pub attachment_id: String,
    /// Relative to the package directory.
    pub path: String,
    pub size: u64,
    pub md5: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestBatch {
    pub folder: String,
    pub files: usize,
    pub bytes: u64,
}

/// `manifest.json`: what the package holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub limits: PackageLimits,
    pub files: Vec<ManifestFile>,
    pub rows_by_module: BTreeMap<String, usize>,
    pub attachment_batches: Vec<ManifestBatch>,
    pub attachments: Vec<ManifestAttachment>,
    /// Files a row lists in `Attachments` that were never handed to `attach`.
    pub missing_attachments: Vec<String>,
}

struct OpenFile {
    index: usize,
    out: BufWriter<File>,
    header: Vec<String>,
    rows: usize,
    bytes: u64,
}

#[derive(Default)]
struct ModuleState {
    custom: Vec<String>,
    open: Option<OpenFile>,
    /// (file name, rows, bytes) of every file written, the open one included (updated on write).
    files: Vec<(String, usize, u64)>,
    last_index: usize,
    ext_ids: HashSet<String>,
}

#[derive(Clone, Debug)]
struct AgentRow {
    first_name: String,
    last_name: String,
    email: String,
    name: String,
    active: bool,
    role: String,
    source_id: String,
}

struct State {
    modules: HashMap<Module, ModuleState>,
    agents: BTreeMap<String, AgentRow>,
    /// (module, ExtId, source attachment id) -> planned file name.
    planned: HashMap<(Module, String, String), String>,
    /// Attachment paths handed out, including those whose bytes are still being written.
    reserved: HashSet<PathBuf>,
    batch: usize,
    batch_bytes: u64,
    batch_files: usize,
    batches: Vec<ManifestBatch>,
    attachments: Vec<ManifestAttachment>,
}

/// The Zoho Desk destination in import-package mode.
pub struct ZohoImportPackage {
    dir: PathBuf,
    limits: PackageLimits,
    state: Mutex<State>,
}

fn csv_line(fields: &[String]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(fields)
        .map_err(|e| Error::Store(format!("csv: {e}")))?;
    w.into_inner()
        .map_err(|e| Error::Store(format!("csv: {e}")))
}

fn time_col(kind: ObjectKind, source_id: &str, what: &str, v: &Option<String>) -> Result<String> {
    match v.as_deref().filter(|s| !s.trim().is_empty()) {
        None => Ok(String::new()),
        Some(t) => package_time(t).ok_or_else(|| {
            Error::data(
                kind,
                source_id,
                format!("{what} '{t}' is not a time the package can hold"),
            )
        }),
    }
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// The agentExtId of a person: lower-case email, else username.
fn agent_ext_id(p: &Person) -> Option<String> {
    p.email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.trim().to_lowercase())
        .or_else(|| p.username.clone().filter(|u| !u.trim().is_empty()))
}

fn batch_folder(batch: usize) -> String {
    if batch <= 1 {
        "attachments".to_string()
    } else {
        format!("attachments_{batch:03}")
    }
}

impl ZohoImportPackage {
    /// Opens (or creates) a package directory with the default limits. Files already there are
    /// picked up: their ExtIds count as written and new rows go to new numbered files.
    pub fn open(dir: impl AsRef<Path>) -> Result<ZohoImportPackage> {
        Self::with_limits(dir, PackageLimits::default())
    }

    pub fn with_limits(dir: impl AsRef<Path>, limits: PackageLimits) -> Result<ZohoImportPackage> {
        if limits.max_rows == 0 || limits.max_bytes == 0 || limits.max_attachment_bytes == 0 {
            return Err(Error::Config(
                "import package limits must all be above zero".into(),
            ));
        }
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut state = State {
            modules: Module::ALL
                .into_iter()
                .map(|m| (m, ModuleState::default()))
                .collect(),
            agents: BTreeMap::new(),
            planned: HashMap::new(),
            reserved: HashSet::new(),
            batch: 1,
            batch_bytes: 0,
            batch_files: 0,
            batches: Vec::new(),
            attachments: Vec::new(),
        };
        let mut names: Vec<String> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let Some(base) = name.strip_suffix(".csv") else {
                continue;
            };
            let Some((stem, index)) = base.rsplit_once('_') else {
                continue;
            };
            let (Some(module), Ok(index)) = (Module::parse_stem(stem), index.parse::<usize>())
            else {
                continue;
            };
            let path = dir.join(&name);
            let bytes = fs::metadata(&path)?.len();
            let mut reader =
                csv::Reader::from_path(&path).map_err(|e| Error::Store(format!("{name}: {e}")))?;
            let header: Vec<String> = reader
                .headers()
                .map_err(|e| Error::Store(format!("{name}: {e}")))?
                .iter()
                .map(str::to_string)
                .collect();
            let mut rows = 0;
            let ms = state
                .modules
                .get_mut(&module)
                .expect("every module has a state");
            for c in header.iter().skip(module.standard_columns().len()) {
                if c != "Attachments" && !ms.custom.contains(c) {
                    ms.custom.push(c.clone());
                }
            }
            for rec in reader.records() {
                let rec = rec.map_err(|e| Error::Store(format!("{name}: {e}")))?;
                rows += 1;
                if module == Module::Agents {
                    let get = |i: usize| rec.get(i).unwrap_or("").to_string();
                    state.agents.insert(
                        get(0),
                        AgentRow {
                            first_name: get(1),
                            last_name: get(2),
                            email: get(3),
                            name: get(4),
                            active: get(5) == "true",
                            role: get(6),
                            source_id: get(7),
                        },
                    );
                } else if let Some(id) = rec.get(0) {
                    ms.ext_ids.insert(id.to_string());
                }
            }
            let ms = state
                .modules
                .get_mut(&module)
                .expect("every module has a state");
            ms.files.push((name.clone(), rows, bytes));
            ms.last_index = ms.last_index.max(index);
        }
        Ok(ZohoImportPackage {
            dir,
            limits,
            state: Mutex::new(state),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn limits(&self) -> &PackageLimits {
        &self.limits
    }

    /// Adds an agent row (agentExtId = lower-case email, else username, else the source id).
    pub fn add_agent(&self, agent: &Agent) -> String {
        let person = Person {
            username: agent.username.clone(),
            email: agent.email.clone(),
            name: None,
        };
        let ext = agent_ext_id(&person).unwrap_or_else(|| agent.source_id.clone());
        let first = agent.first_name.clone().unwrap_or_default();
        let last = agent.last_name.clone().unwrap_or_default();
        let row = AgentRow {
            name: format!("{first} {last}").trim().to_string(),
            first_name: first,
            last_name: last,
            email: agent.email.clone().unwrap_or_default(),
            active: agent.active,
            role: agent.role.clone().unwrap_or_default(),
            source_id: agent.source_id.clone(),
        };
        self.state.lock().unwrap().agents.insert(ext.clone(), row);
        ext
    }

    /// Closes the open CSV files, writes the Agents file and `manifest.json`, and returns the manifest.
    pub fn finish(&self) -> Result<Manifest> {
        let mut st = self.state.lock().unwrap();
        for m in Module::ALL {
            Self::close(st.modules.get_mut(&m).expect("every module has a state"))?;
        }
        // Agents are rewritten whole: rows gathered from every record written so far.
        let agents_state = st
            .modules
            .get_mut(&Module::Agents)
            .expect("every module has a state");
        for (name, _, _) in agents_state.files.drain(..) {
            let _ = fs::remove_file(self.dir.join(name));
        }
        agents_state.last_index = 0;
        agents_state.ext_ids.clear();
        let agents: Vec<(String, AgentRow)> = st
            .agents
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (ext, a) in agents {
            let row = vec![
                ("agentExtId".to_string(), ext.clone()),
                ("First Name".into(), a.first_name),
                ("Last Name".into(), a.last_name),
                ("Email".into(), a.email),
                ("Name".into(), a.name),
                ("Active".into(), a.active.to_string()),
                ("Role".into(), a.role),
                ("Source ID".into(), a.source_id),
            ];
            self.write_row(&mut st, Module::Agents, &ext, row)?;
        }
        Self::close(
            st.modules
                .get_mut(&Module::Agents)
                .expect("every module has a state"),
        )?;

        let mut files = Vec::new();
        let mut rows_by_module = BTreeMap::new();
        for m in Module::ALL {
            let ms = &st.modules[&m];
            let mut total = 0;
            for (name, rows, bytes) in &ms.files {
                files.push(ManifestFile {
                    module: m,
                    path: name.clone(),
                    rows: *rows,
                    bytes: *bytes,
                });
                total += rows;
            }
            rows_by_module.insert(m.file_stem().to_string(), total);
        }
        let mut batches = st.batches.clone();
        if st.batch_files > 0 {
            batches.push(ManifestBatch {
                folder: batch_folder(st.batch),
                files: st.batch_files,
                bytes: st.batch_bytes,
            });
        }
        let attached: HashSet<(Module, String, String)> = st
            .attachments
            .iter()
            .map(|a| (a.module, a.ext_id.clone(), a.attachment_id.clone()))
            .collect();
        let mut missing: Vec<String> = st
            .planned
            .iter()
            .filter(|(key, _)| !attached.contains(*key))
            .map(|((m, ext, _), name)| format!("{}/{}/{}", m.file_stem(), ext, name))
            .collect();
        missing.sort();
        let manifest = Manifest {
            format: "zoho-desk-migration-csv".into(),
            limits: self.limits.clone(),
            files,
            rows_by_module,
            attachment_batches: batches,
            attachments: st.attachments.clone(),
            missing_attachments: missing,
        };
        let json = serde_json::to_vec_pretty(&manifest)?;
        fs::write(self.dir.join("manifest.json"), json)?;
        Ok(manifest)
    }

    fn close(ms: &mut ModuleState) -> Result<()> {
        if let Some(mut f) = ms.open.take() {
            f.out.flush()?;
        }
        Ok(())
    }

    /// Appends one row, starting a new numbered file when the limits or the columns require it.
    fn write_row(
        &self,
        st: &mut State,
        module: Module,
        ext_id: &str,
        row: Vec<(String, String)>,
    ) -> Result<()> {
        let ms = st
            .modules
            .get_mut(&module)
            .expect("every module has a state");
        let standard = module.standard_columns();
        let mut new_column = false;
        for (col, _) in &row {
            if !standard.contains(&col.as_str()) && col != "Attachments" && !ms.custom.contains(col)
            {
                ms.custom.push(col.clone());
                new_column = true;
            }
        }
        let mut header: Vec<String> = standard.iter().map(|c| c.to_string()).collect();
        header.extend(ms.custom.iter().cloned());
        if module.has_attachments() {
            header.push("Attachments".into());
        }
        let values: Vec<String> = header
            .iter()
            .map(|h| {
                row.iter()
                    .find(|(c, _)| c == h)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        let line = csv_line(&values)?;
        let header_line = csv_line(&header)?;
        if header_line.len() as u64 + line.len() as u64 > self.limits.max_bytes {
            return Err(Error::Data {
                kind: ObjectKind::Ticket,
                source_id: ext_id.to_string(),
                message: format!(
                    "its {} row is {} bytes, more than a whole package file may hold ({} bytes)",
                    module.file_stem(),
                    line.len(),
                    self.limits.max_bytes
                ),
            });
        }
        let must_rotate = ms.open.as_ref().is_some_and(|f| {
            new_column
                || f.rows + 1 > self.limits.max_rows
                || f.bytes + line.len() as u64 > self.limits.max_bytes
        });
        if must_rotate {
            Self::close(ms)?;
        }
        if ms.open.is_none() {
            let index = ms.last_index + 1;
            let name = format!("{}_{index:03}.csv", module.file_stem());
            let mut out = BufWriter::new(File::create(self.dir.join(&name))?);
            out.write_all(&header_line)?;
            ms.last_index = index;
            ms.files.push((name, 0, header_line.len() as u64));
            ms.open = Some(OpenFile {
                index,
                out,
                header,
                rows: 0,
                bytes: header_line.len() as u64,
            });
        }
        let f = ms.open.as_mut().expect("a file is open");
        debug_assert!(f.header.len() == values.len() && f.index == ms.last_index);
        f.out.write_all(&line)?;
        f.rows += 1;
        f.bytes += line.len() as u64;
        if let Some(last) = ms.files.last_mut() {
            last.1 = f.rows;
            last.2 = f.bytes;
        }
        ms.ext_ids.insert(ext_id.to_string());
        Ok(())
    }

    fn custom_cols(module: Module, custom: &CustomValues) -> Vec<(String, String)> {
        custom
            .iter()
            .map(|(label, v)| (custom_column(module, label), v.as_text()))
            .collect()
    }

    /// Plans the attachment file names of a row and returns the `Attachments` column.
    fn plan_attachments(
        st: &mut State,
        module: Module,
        ext_id: &str,
        atts: &[AttachmentRef],
    ) -> String {
        let mut used: Vec<String> = Vec::new();
        for a in atts {
            let base = safe_file_name(&a.file_name);
            let mut name = base.clone();
            let mut n = 2;
            while used.contains(&name) {
                name = match base.rsplit_once('.') {
                    Some((stem, ext)) if !stem.is_empty() => format!("{stem} ({n}).{ext}"),
                    _ => format!("{base} ({n})"),
                };
                n += 1;
            }
            st.planned
                .insert((module, ext_id.to_string(), a.id.clone()), name.clone());
            used.push(name);
        }
        used.join(";")
    }

    fn require(
        st: &State,
        kind: ObjectKind,
        source_id: &str,
        module: Module,
        ext: &str,
    ) -> Result<()> {
        if st.modules[&module].ext_ids.contains(ext) {
            Ok(())
        } else {
            Err(Error::data(
                kind,
                source_id,
                format!(
                    "it references {} {ext}, which is not in the package yet; load it first",
                    module.key_column()
                ),
            ))
        }
    }

    fn note_agent(st: &mut State, p: &Option<Person>) -> String {
        let Some(p) = p else { return String::new() };
        let Some(ext) = agent_ext_id(p) else {
            return String::new();
        };
        st.agents.entry(ext.clone()).or_insert_with(|| {
            let name = p.name.clone().unwrap_or_default();
            let (first, last) = match name.rsplit_once(' ') {
                Some((f, l)) => (f.to_string(), l.to_string()),
                None => (String::new(), name.clone()),
            };
            AgentRow {
                first_name: first,
                last_name: if last.is_empty() { ext.clone() } else { last },
                email: p.email.clone().unwrap_or_default(),
                name,
                active: true,
                role: String::new(),
                source_id: String::new(),
            }
        });
        ext
    }

    fn account_row(st: &mut State, a: &Account) -> Vec<(String, String)> {
        let m = Module::Accounts;
        let mut row = vec![
            ("AccountExtId".to_string(), a.source_id.clone()),
            ("Account Name".into(), a.name.clone()),
            ("Phone".into(), opt(&a.phone)),
            ("Email".into(), opt(&a.email)),
            ("Website".into(), opt(&a.website)),
            ("Street".into(), opt(&a.street)),
            ("City".into(), opt(&a.city)),
            ("State".into(), opt(&a.state)),
            ("Code".into(), opt(&a.zip)),
            ("Country".into(), opt(&a.country)),
            ("Description".into(), opt(&a.description)),
        ];
        row.extend(Self::custom_cols(m, &a.custom));
        row.push((
            "Attachments".into(),
            Self::plan_attachments(st, m, &a.source_id, &a.attachments),
        ));
        row
    }

    fn contact_row(st: &mut State, c: &Contact) -> Result<Vec<(String, String)>> {
        let m = Module::Contacts;
        if let Some(a) = &c.account {
            Self::require(st, ObjectKind::Contact, &c.source_id, Module::Accounts, a)?;
        }
        let mut row = vec![
            ("ContactExtId".to_string(), c.source_id.clone()),
            ("AccountExtId".into(), opt(&c.account)),
            ("First Name".into(), opt(&c.first_name)),
            ("Last Name".into(), c.last_name.clone()),
            ("Email".into(), opt(&c.email)),
            ("Phone".into(), opt(&c.phone)),
            ("Mobile".into(), opt(&c.mobile)),
        ];
        row.extend(Self::custom_cols(m, &c.custom));
        row.push((
            "Attachments".into(),
            Self::plan_attachments(st, m, &c.source_id, &c.attachments),
        ));
        Ok(row)
    }

    fn ticket_row(st: &mut State, t: &Ticket) -> Result<Vec<(String, String)>> {
        let m = Module::Tickets;
        let k = ObjectKind::Ticket;
        if let Some(c) = &t.contact {
            Self::require(st, k, &t.source_id, Module::Contacts, c)?;
        }
        if let Some(a) = &t.account {
            Self::require(st, k, &t.source_id, Module::Accounts, a)?;
        }
        let assignee = Self::note_agent(st, &t.assignee);
        let mut row = vec![
            ("TicketExtId".to_string(), t.source_id.clone()),
            ("ContactExtId".into(), opt(&t.contact)),
            ("AccountExtId".into(), opt(&t.account)),
            ("Subject".into(), t.subject.clone()),
            ("Description".into(), opt(&t.description_html)),
            ("Status".into(), opt(&t.status)),
            ("Priority".into(), opt(&t.priority)),
            ("Department".into(), opt(&t.department)),
            ("Channel".into(), opt(&t.channel)),
            ("Category".into(), opt(&t.category)),
            (
                "Due Date".into(),
                time_col(k, &t.source_id, "due date", &t.due_date)?,
            ),
            ("Tags".into(), t.tags.join(";")),
            ("AssigneeExtId".into(), assignee),
            (
                "Created By".into(),
                t.created_by
                    .as_ref()
                    .map(Person::display)
                    .unwrap_or_default(),
            ),
            (
                "Created Time".into(),
                time_col(k, &t.source_id, "created time", &t.created_at)?,
            ),
            (
                "Modified Time".into(),
                time_col(k, &t.source_id, "modified time", &t.modified_at)?,
            ),
        ];
        row.extend(Self::custom_cols(m, &t.custom));
        row.push((
            "Attachments".into(),
            Self::plan_attachments(st, m, &t.source_id, &t.attachments),
        ));
        Ok(row)
    }

    fn activity_row(st: &mut State, a: &Activity) -> Result<(Module, Vec<(String, String)>)> {
        let k = ObjectKind::Activity;
        Self::require(st, k, &a.source_id, Module::Tickets, &a.ticket)?;
        let when = time_col(k, &a.source_id, "time", &a.created_at)?;
        let author = a.author.as_ref().map(Person::display).unwrap_or_default();
        match &a.kind {
            ActivityKind::Email {
                inbound,
                from,
                to,
                cc,
                subject,
            } => {
                let m = Module::Threads;
                let agent = if *inbound {
                    String::new()
                } else {
                    Self::note_agent(st, &a.author)
                };
                let mut row = vec![
                    ("ThreadExtId".to_string(), a.source_id.clone()),
                    ("TicketExtId".into(), a.ticket.clone()),
                    (
                        "Direction".into(),
                        if *inbound { "in" } else { "out" }.to_string(),
                    ),
                    ("Channel".into(), "EMAIL".into()),
                    ("From".into(), opt(from)),
                    ("To".into(), to.join(";")),
                    ("Cc".into(), cc.join(";")),
                    ("Subject".into(), opt(subject)),
                    ("Content".into(), a.body_html.clone()),
                    ("Content Type".into(), "html".into()),
                    ("AgentExtId".into(), agent),
                    ("Author".into(), author),
                    ("Created Time".into(), when),
                ];
                row.extend(Self::custom_cols(m, &a.custom));
                row.push((
                    "Attachments".into(),
                    Self::plan_attachments(st, m, &a.source_id, &a.attachments),
                ));
                Ok((m, row))
            }
            ActivityKind::Call { .. } | ActivityKind::Note => {
                let m = Module::TicketComments;
                let (kind, disposition, duration) = match &a.kind {
                    ActivityKind::Call {
                        disposition,
                        duration_secs,
                    } => (
                        "call",
                        opt(disposition),
                        duration_secs.map(|d| d.to_string()).unwrap_or_default(),
                    ),
                    _ => ("note", String::new(), String::new()),
                };
                let agent = Self::note_agent(st, &a.author);
                let mut row = vec![
                    ("CommentExtId".to_string(), a.source_id.clone()),
                    ("TicketExtId".into(), a.ticket.clone()),
                    ("Comment Type".into(), kind.to_string()),
                    ("Call Disposition".into(), disposition),
                    ("Call Duration".into(), duration),
                    ("Content".into(), a.body_html.clone()),
                    ("Is Public".into(), a.public.to_string()),
                    ("AgentExtId".into(), agent),
                    ("Author".into(), author),
                    ("Commented Time".into(), when),
                ];
                row.extend(Self::custom_cols(m, &a.custom));
                row.push((
                    "Attachments".into(),
                    Self::plan_attachments(st, m, &a.source_id, &a.attachments),
                ));
                Ok((m, row))
            }
        }
    }

    fn task_row(st: &mut State, t: &Task) -> Result<Vec<(String, String)>> {
        let m = Module::Tasks;
        let k = ObjectKind::Task;
        if let Some(p) = &t.ticket {
            Self::require(st, k, &t.source_id, Module::Tickets, p)?;
        }
        let owner = Self::note_agent(st, &t.owner);
        let mut row = vec![
            ("TaskExtId".to_string(), t.source_id.clone()),
            ("TicketExtId".into(), opt(&t.ticket)),
            ("Subject".into(), t.subject.clone()),
            ("Description".into(), opt(&t.description)),
            (
                "Due Date".into(),
                time_col(k, &t.source_id, "due date", &t.due_date)?,
            ),
            ("Status".into(), opt(&t.status)),
            ("Priority".into(), opt(&t.priority)),
            ("Department".into(), opt(&t.department)),
            ("OwnerExtId".into(), owner),
            (
                "Created Time".into(),
                time_col(k, &t.source_id, "created time", &t.created_at)?,
            ),
        ];
        row.extend(Self::custom_cols(m, &t.custom));
        Ok(row)
    }

    fn module_of_record(st: &State, kind: ObjectKind, ext: &str) -> Option<Module> {
        let candidates: &[Module] = match kind {
            ObjectKind::Account => &[Module::Accounts],
            ObjectKind::Contact => &[Module::Contacts],
            ObjectKind::Ticket => &[Module::Tickets],
            ObjectKind::Activity => &[Module::Threads, Module::TicketComments],
            ObjectKind::Task => &[Module::Tasks],
            ObjectKind::Agent => &[Module::Agents],
            _ => &[],
        };
        candidates
            .iter()
            .copied()
            .find(|m| st.modules[m].ext_ids.contains(ext))
    }

    /// The row of `ext` in `module`, as column -> value (files flushed first).
    fn find_row(
        &self,
        st: &mut State,
        module: Module,
        ext: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        let ms = st
            .modules
            .get_mut(&module)
            .expect("every module has a state");
        if let Some(f) = ms.open.as_mut() {
            f.out.flush()?;
        }
        for (name, _, _) in ms.files.iter().rev() {
            let mut reader = csv::Reader::from_path(self.dir.join(name))
                .map_err(|e| Error::Store(format!("{name}: {e}")))?;
            let header: Vec<String> = reader
                .headers()
                .map_err(|e| Error::Store(format!("{name}: {e}")))?
                .iter()
                .map(str::to_string)
                .collect();
            for rec in reader.records() {
                let rec = rec.map_err(|e| Error::Store(format!("{name}: {e}")))?;
                if rec.get(0) == Some(ext) {
                    return Ok(Some(
                        header
                            .iter()
                            .cloned()
                            .zip(rec.iter().map(str::to_string))
                            .collect(),
                    ));
                }
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl Destination for ZohoImportPackage {
    fn platform(&self) -> &'static str {
        PACKAGE_PLATFORM
    }

    async fn describe(&self) -> Result<DestinationInfo> {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Ok(DestinationInfo {
            platform: PACKAGE_PLATFORM.into(),
            allowed_values: BTreeMap::from([
                (
                    "ticket.status".to_string(),
                    strings(&DEFAULT_TICKET_STATUSES),
                ),
                (
                    "ticket.priority".to_string(),
                    strings(&DEFAULT_TICKET_PRIORITIES),
                ),
                (
                    "ticket.channel".to_string(),
                    strings(&DEFAULT_TICKET_CHANNELS),
                ),
                ("task.status".to_string(), strings(&DEFAULT_TASK_STATUSES)),
                (
                    "task.priority".to_string(),
                    strings(&DEFAULT_TASK_PRIORITIES),
                ),
            ]),
            calls_per_record: [
                "account",
                "contact",
                "ticket",
                "activity",
                "task",
                "attachment",
            ]
            .into_iter()
            .map(|k| (k.to_string(), 0.0))
            .collect(),
            ..DestinationInfo::default()
        })
    }

    async fn ensure_custom_field(&self, spec: &CustomFieldSpec) -> Result<DestField> {
        let modules = Module::for_custom(spec.kind);
        let Some(first) = modules.first() else {
            return Err(Error::Config(format!(
                "the import package has no custom columns for {} records",
                spec.kind
            )));
        };
        let mut st = self.state.lock().unwrap();
        for m in modules {
            let col = custom_column(*m, &spec.label);
            let ms = st.modules.get_mut(m).expect("every module has a state");
            if !ms.custom.contains(&col) {
                ms.custom.push(col);
            }
        }
        let column = custom_column(*first, &spec.label);
        Ok(DestField {
            id: column.clone(),
            kind: spec.kind,
            label: spec.label.clone(),
            api_name: column,
            field_type: zoho_field_type(&spec.field_type).to_string(),
            options: spec.options.clone(),
        })
    }

    async fn create(
        &self,
        record: &CanonicalRecord,
        _ctx: &LoadContext,
    ) -> Result<deskshift_core::ports::Created> {
        let id: Result<String> = async {
            let mut st = self.state.lock().unwrap();
            let kind = record.kind();
            let sid = record.source_id();
            if Self::module_of_record(&st, kind, sid).is_some() {
                return Err(Error::data(
                    kind,
                    sid,
                    "it is already in the import package (find_existing returns it)",
                ));
            }
            let (module, row) = match record {
                CanonicalRecord::Account(a) => (Module::Accounts, Self::account_row(&mut st, a)),
                CanonicalRecord::Contact(c) => (Module::Contacts, Self::contact_row(&mut st, c)?),
                CanonicalRecord::Ticket(t) => (Module::Tickets, Self::ticket_row(&mut st, t)?),
                CanonicalRecord::Activity(a) => Self::activity_row(&mut st, a)?,
                CanonicalRecord::Task(t) => (Module::Tasks, Self::task_row(&mut st, t)?),
            };
            self.write_row(&mut st, module, sid, row)
                .map_err(|e| match e {
                    Error::Data { message, .. } => Error::data(kind, sid, message),
                    other => other,
                })?;
            Ok(sid.to_string())
        }
        .await;
        id.map(Into::into)
    }

    async fn update(
        &self,
        _dest_id: &str,
        record: &CanonicalRecord,
        _ctx: &LoadContext,
    ) -> Result<()> {
        Err(Error::Config(format!(
            "the Zoho import package is written once and cannot update {} {}; rebuild the package, or run delta sync in REST mode",
            record.kind(),
            record.source_id()
        )))
    }

    async fn find_existing(
        &self,
        record: &CanonicalRecord,
        _ctx: &LoadContext,
    ) -> Result<Option<String>> {
        let st = self.state.lock().unwrap();
        Ok(
            Self::module_of_record(&st, record.kind(), record.source_id())
                .map(|_| record.source_id().to_string()),
        )
    }

    async fn attach(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
        attachment: &AttachmentRef,
        bytes: Bytes,
    ) -> Result<String> {
        let (path, rel, module) = {
            let mut st = self.state.lock().unwrap();
            let module =
                Self::module_of_record(&st, parent_kind, parent_dest_id).ok_or_else(|| {
                    Error::data(
                        ObjectKind::Attachment,
                        &attachment.id,
                        format!(
                            "its parent {parent_kind} {parent_dest_id} is not in the import package"
                        ),
                    )
                })?;
            let key = (module, parent_dest_id.to_string(), attachment.id.clone());
            if let Some(done) = st
                .attachments
                .iter()
                .find(|a| (a.module, a.ext_id.clone(), a.attachment_id.clone()) == key)
            {
                return Ok(done.path.clone());
            }
            let size = bytes.len() as u64;
            if st.batch_bytes > 0 && st.batch_bytes + size > self.limits.max_attachment_bytes {
                let done = ManifestBatch {
                    folder: batch_folder(st.batch),
                    files: st.batch_files,
                    bytes: st.batch_bytes,
                };
                st.batches.push(done);
                st.batch += 1;
                st.batch_bytes = 0;
                st.batch_files = 0;
            }
            let owner = safe_file_name(parent_dest_id);
            let folder = self
                .dir
                .join(batch_folder(st.batch))
                .join(module.file_stem())
                .join(&owner);
            let base = st
                .planned
                .get(&key)
                .cloned()
                // Files of other records attached here (an activity's on its ticket) carry a short
                // id so they never take the name a row of this record lists.
                .unwrap_or_else(|| {
                    let tag = &deskshift_core::util::sha256_hex(attachment.id.as_bytes())[..8];
                    format!("{tag}-{}", safe_file_name(&attachment.file_name))
                });
            let mut name = base.clone();
            let mut n = 2;
            // A file of that name from another attachment (an earlier run, or one being written right
            // now by a concurrent upload) is kept; this one gets a suffix.
            while folder.join(&name).exists() || st.reserved.contains(&folder.join(&name)) {
                name = format!("{base} ({n})");
                n += 1;
            }
            st.reserved.insert(folder.join(&name));
            st.batch_bytes += size;
            st.batch_files += 1;
            let rel = format!(
                "{}/{}/{owner}/{name}",
                batch_folder(st.batch),
                module.file_stem()
            );
            st.attachments.push(ManifestAttachment {
                module,
                ext_id: parent_dest_id.to_string(),
                attachment_id: attachment.id.clone(),
                path: rel.clone(),
                size,
                md5: deskshift_core::util::md5_hex(&bytes),
            });
            (folder.join(&name), rel, module)
        };
        let write = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&path, &bytes)
        });
        write.await.map_err(|e| {
            Error::Store(format!("attachment write for {}: {e}", module.file_stem()))
        })??;
        Ok(rel)
    }

    async fn prepare_agents(&self, agents: &[Agent]) -> Result<()> {
        for a in agents {
            self.add_agent(a);
        }
        Ok(())
    }

    async fn finish(&self) -> Result<()> {
        ZohoImportPackage::finish(self).map(|_| ())
    }

    async fn find_attachment(
        &self,
        _parent_kind: ObjectKind,
        _parent_dest_id: &str,
        _attachment: &AttachmentRef,
        _size: u64,
    ) -> Result<Option<String>> {
        // Copying a file into the package is repeatable: a second copy overwrites the first.
        Ok(None)
    }

    async fn delete(&self, kind: ObjectKind, dest_id: &str) -> Result<()> {
        Err(Error::Config(format!(
            "the Zoho import package cannot delete {kind} {dest_id}: remove the package directory ({}) instead, or revert \
             the import in Zoho Desk (possible for two weeks)",
            self.dir.display()
        )))
    }

    async fn read_back(
        &self,
        kind: ObjectKind,
        dest_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        let mut st = self.state.lock().unwrap();
        let Some(module) = Self::module_of_record(&st, kind, dest_id) else {
            return Ok(None);
        };
        let Some(row) = self.find_row(&mut st, module, dest_id)? else {
            return Ok(None);
        };
        let names: &[(&str, &str)] = match module {
            Module::Accounts => &[
                ("name", "Account Name"),
                ("phone", "Phone"),
                ("email", "Email"),
                ("website", "Website"),
                ("street", "Street"),
                ("city", "City"),
                ("state", "State"),
                ("zip", "Code"),
                ("country", "Country"),
                ("description", "Description"),
            ],
            Module::Contacts => &[
                ("first_name", "First Name"),
                ("last_name", "Last Name"),
                ("email", "Email"),
                ("phone", "Phone"),
                ("mobile", "Mobile"),
                ("account", "AccountExtId"),
            ],
            Module::Tickets => &[
                ("subject", "Subject"),
                ("status", "Status"),
                ("priority", "Priority"),
                ("department", "Department"),
                ("channel", "Channel"),
                ("category", "Category"),
                ("due_date", "Due Date"),
                ("contact", "ContactExtId"),
                ("created_at", "Created Time"),
            ],
            Module::Threads => &[
                ("body_html", "Content"),
                ("created_at", "Created Time"),
                ("direction", "Direction"),
            ],
            Module::TicketComments => &[
                ("body_html", "Content"),
                ("public", "Is Public"),
                ("created_at", "Commented Time"),
            ],
            Module::Tasks => &[
                ("subject", "Subject"),
                ("status", "Status"),
                ("due_date", "Due Date"),
                ("priority", "Priority"),
            ],
            Module::Agents => &[("email", "Email"), ("name", "Name")],
        };
        let mut out = BTreeMap::new();
        for (name, col) in names {
            if let Some(v) = row.get(*col).filter(|v| !v.is_empty()) {
                out.insert(name.to_string(), v.clone());
            }
        }
        if module == Module::Threads {
            out.insert("public".into(), "true".into());
        }
        let agent_col = match module {
            Module::Tickets => Some(("assignee_email", "AssigneeExtId")),
            Module::Tasks => Some(("owner_email", "OwnerExtId")),
            _ => None,
        };
        if let Some((name, col)) = agent_col
            && let Some(ext) = row.get(col).filter(|v| !v.is_empty())
        {
            let email = st
                .agents
                .get(ext)
                .map(|a| a.email.clone())
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| ext.clone());
            out.insert(name.to_string(), email);
        }
        let ms = &st.modules[&module];
        for col in &ms.custom {
            if let Some(v) = row.get(col).filter(|v| !v.is_empty()) {
                let label = col.strip_suffix(" (custom)").unwrap_or(col);
                out.insert(format!("custom.{label}"), v.clone());
            }
        }
        Ok(Some(out))
    }

    async fn count(&self, kind: ObjectKind) -> Result<Option<u64>> {
        let st = self.state.lock().unwrap();
        let n = match kind {
            ObjectKind::Account => st.modules[&Module::Accounts].ext_ids.len(),
            ObjectKind::Contact => st.modules[&Module::Contacts].ext_ids.len(),
            ObjectKind::Ticket => st.modules[&Module::Tickets].ext_ids.len(),
            ObjectKind::Activity => {
                st.modules[&Module::Threads].ext_ids.len()
                    + st.modules[&Module::TicketComments].ext_ids.len()
            }
            ObjectKind::Task => st.modules[&Module::Tasks].ext_ids.len(),
            ObjectKind::Agent => st.agents.len(),
            ObjectKind::Attachment => st.attachments.len(),
            _ => return Ok(None),
        };
        Ok(Some(n as u64))
    }

    fn spend(&self) -> Spend {
        Spend::default()
    }
}
