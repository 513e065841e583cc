//! The job specification, shared by the CLI's TOML job file and the Lambda functions' job
//! configuration object: where the source and destination are and how to log in (credentials by
//! reference only), and the one builder of their connectors.
//!
//! The credential reference type `C` is the caller's: the CLI names an environment variable or a
//! file, the functions a Secrets Manager secret. A [`Credentials`] implementation reads it.

mod lazy;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use async_trait::async_trait;
use deskshift_core::job::Settings;
use deskshift_core::ports::{Destination, Source};
use deskshift_core::util::Secret;
use deskshift_ivinex::{IvinexConfig, IvinexSource};
use deskshift_zohodesk::{
    RetryConfig, SharedTokenCache, ZohoDesk, ZohoDeskConfig, ZohoImportPackage,
};
use deskshift_zohodesk_source::{ZohoDeskSource, ZohoSourceConfig};
use serde::{Deserialize, Serialize};

pub use lazy::{LazyZohoDesk, LazyZohoSource};

/// Reads the credential a reference names. Errors name `setting`, never the value.
#[async_trait]
pub trait Credentials<C>: Send + Sync {
    async fn read(&self, setting: &str, reference: &C) -> anyhow::Result<Secret>;
}

/// A job: source, destination and settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound(
    serialize = "C: Serialize",
    deserialize = "C: Deserialize<'de> + Default"
))]
pub struct JobSpec<C> {
    pub source: SourceSpec<C>,
    pub destination: DestinationSpec<C>,
    #[serde(default)]
    pub settings: Settings,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "snake_case", deny_unknown_fields)]
#[serde(bound(
    serialize = "C: Serialize",
    deserialize = "C: Deserialize<'de> + Default"
))]
pub enum SourceSpec<C> {
    Ivinex {
        base_url: String,
        user: String,
        password: C,
        timezone: String,
        #[serde(default)]
        attachment_hosts: Vec<String>,
        #[serde(default)]
        max_concurrency: Option<usize>,
    },
    Zohodesk {
        #[serde(flatten)]
        zoho: ZohoConnection<C>,
    },
}

/// Where a Zoho Desk org is and how to log in (its secrets by reference).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "C: Serialize",
    deserialize = "C: Deserialize<'de> + Default"
))]
pub struct ZohoConnection<C> {
    /// Data centre (com, eu, in, com.au, jp, ...) or explicit hosts below.
    #[serde(default)]
    pub dc: Option<String>,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default)]
    pub accounts_base: Option<String>,
    #[serde(default)]
    pub org_id: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: C,
    #[serde(default)]
    pub refresh_token: C,
    #[serde(default)]
    pub concurrency_cap: Option<usize>,
    /// In-process retries of throttled and failed calls (the defaults suit production).
    #[serde(default)]
    pub retry: Option<RetryConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "snake_case", deny_unknown_fields)]
#[serde(bound(
    serialize = "C: Serialize",
    deserialize = "C: Deserialize<'de> + Default"
))]
pub enum DestinationSpec<C> {
    Zohodesk {
        /// `rest` (the API) or `import-package` (Zoho's migration CSV package in `package_dir`).
        #[serde(default = "rest")]
        mode: String,
        /// Data centre (com, eu, in, com.au, jp, ...) or explicit hosts below.
        #[serde(default)]
        dc: Option<String>,
        #[serde(default)]
        api_base: Option<String>,
        #[serde(default)]
        accounts_base: Option<String>,
        #[serde(default)]
        org_id: String,
        #[serde(default)]
        client_id: String,
        #[serde(default)]
        client_secret: C,
        #[serde(default)]
        refresh_token: C,
        #[serde(default)]
        concurrency_cap: Option<usize>,
        #[serde(default)]
        default_department: Option<String>,
        #[serde(default)]
        package_dir: Option<PathBuf>,
        /// In-process retries of throttled and failed calls (the defaults suit production).
        #[serde(default)]
        retry: Option<RetryConfig>,
    },
    /// Jira Service Management (Cloud): Basic auth with an API token.
    Jsm {
        base_url: String,
        email: String,
        api_token: C,
        /// Service desk (project key or name) for departments not mapped below.
        #[serde(default)]
        service_desk: Option<String>,
        /// Department name -> service desk (project key or name); by default a desk of the same name.
        #[serde(default)]
        department_desks: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        request_type: Option<String>,
        /// Department name -> request type (name or id), overriding `request_type`.
        #[serde(default)]
        department_request_types: std::collections::BTreeMap<String, String>,
        /// `cascading` (one cascading select) or `labels`.
        #[serde(default)]
        category_mode: Option<deskshift_jsm::CategoryMode>,
        /// Name of the cascading select created for category / sub-category.
        #[serde(default)]
        category_field: Option<String>,
        /// Name of the text field holding the legacy ticket id.
        #[serde(default)]
        legacy_id_field: Option<String>,
        /// Issue link type for related tickets (e.g. `Relates`).
        #[serde(default)]
        link_type: Option<String>,
        #[serde(default)]
        concurrency_cap: Option<usize>,
        /// Writes per second to one issue (0 = no spacing).
        #[serde(default)]
        per_issue_writes_per_second: Option<f64>,
        /// Attachments up to this size are downloaded back and compared by MD5.
        #[serde(default)]
        verify_download_max_bytes: Option<u64>,
        /// In-process retries of throttled and failed calls (the defaults suit production).
        #[serde(default)]
        retry: Option<RetryConfig>,
    },
}

fn rest() -> String {
    "rest".into()
}

impl<C> DestinationSpec<C> {
    /// A JSM destination with every optional setting at its default.
    pub fn jsm(
        base_url: String,
        email: String,
        api_token: C,
        request_type: Option<String>,
    ) -> Self {
        DestinationSpec::Jsm {
            base_url,
            email,
            api_token,
            service_desk: None,
            department_desks: Default::default(),
            request_type,
            department_request_types: Default::default(),
            category_mode: None,
            category_field: None,
            legacy_id_field: None,
            link_type: None,
            concurrency_cap: None,
            per_issue_writes_per_second: None,
            verify_download_max_bytes: None,
            retry: None,
        }
    }
}

/// A connector being built (boxed and `Send`, so callers in `Send` futures need no bounds).
pub type Built<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<T>> + Send + 'a>>;

/// How the connectors are built.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// The directory relative paths are resolved against (the job file's). None: no local file
    /// system to write to (AWS), so the Zoho import-package mode is refused.
    pub base_dir: Option<PathBuf>,
    /// The job directory: the import package's default place.
    pub job_dir: Option<PathBuf>,
    /// Where Zoho access tokens are shared (Lambda: across cold starts); default per client.
    pub token_cache: SharedTokenCache,
    /// Zoho connectors take their token and read the edition on first use instead of at build,
    /// so a process that never calls Zoho spends no token grant.
    pub lazy: bool,
}

/// Zoho Desk connection settings from the spec's fields, credentials read.
#[allow(clippy::too_many_arguments)]
async fn zoho_config<C: Send + Sync>(
    side: &str,
    dc: Option<&str>,
    api_base: Option<&String>,
    accounts_base: Option<&String>,
    org_id: &str,
    client_id: &str,
    client_secret: &C,
    refresh_token: &C,
    concurrency_cap: Option<usize>,
    retry: Option<&RetryConfig>,
    creds: &dyn Credentials<C>,
    opts: &BuildOptions,
) -> anyhow::Result<ZohoDeskConfig> {
    let mut cfg = ZohoDeskConfig::for_dc(dc.unwrap_or("com"))?;
    if let Some(a) = api_base {
        cfg.api_base = a.clone();
    }
    if let Some(a) = accounts_base {
        cfg.accounts_base = a.clone();
    }
    cfg.org_id = org_id.to_string();
    cfg.client_id = client_id.to_string();
    let secret_setting = format!("{side}.client_secret");
    cfg.client_secret = creds.read(&secret_setting, client_secret).await?;
    let token_setting = format!("{side}.refresh_token");
    cfg.refresh_token = creds.read(&token_setting, refresh_token).await?;
    cfg.concurrency_cap = concurrency_cap;
    if let Some(r) = retry {
        cfg.retry = r.clone();
    }
    cfg.token_cache = opts.token_cache.clone();
    Ok(cfg)
}

impl<C: Send + Sync + 'static> SourceSpec<C> {
    /// The source connector and the source's time zone (when it has one).
    pub fn build<'a>(
        &'a self,
        settings: &'a Settings,
        creds: &'a dyn Credentials<C>,
        opts: &'a BuildOptions,
    ) -> Built<'a, (Arc<dyn Source>, Option<jiff::tz::TimeZone>)> {
        Box::pin(async move {
            match self {
                SourceSpec::Ivinex {
                    base_url,
                    user,
                    password,
                    timezone,
                    attachment_hosts,
                    max_concurrency,
                } => {
                    let src = IvinexSource::new(IvinexConfig {
                        base_url: base_url.clone(),
                        user: user.clone(),
                        password: creds.read("source.password", password).await?,
                        timezone: timezone.clone(),
                        page_size: settings.page_size,
                        attachment_hosts: attachment_hosts.clone(),
                        max_concurrency: max_concurrency.unwrap_or(8),
                    })?;
                    let zone = src.timezone().clone();
                    Ok((Arc::new(src) as Arc<dyn Source>, Some(zone)))
                }
                SourceSpec::Zohodesk { zoho } => {
                    let mut cfg = ZohoSourceConfig::new(
                        zoho_config(
                            "source",
                            zoho.dc.as_deref(),
                            zoho.api_base.as_ref(),
                            zoho.accounts_base.as_ref(),
                            &zoho.org_id,
                            &zoho.client_id,
                            &zoho.client_secret,
                            &zoho.refresh_token,
                            zoho.concurrency_cap,
                            zoho.retry.as_ref(),
                            creds,
                            opts,
                        )
                        .await?,
                    );
                    // The job's page size, within what each Zoho Desk list endpoint accepts.
                    cfg.ticket_page_size = settings.page_size.clamp(1, 100);
                    cfg.record_page_size = settings.page_size.clamp(1, 99);
                    let src: Arc<dyn Source> = if opts.lazy {
                        Arc::new(LazyZohoSource::new(cfg)?)
                    } else {
                        Arc::new(ZohoDeskSource::connect(cfg).await?)
                    };
                    Ok((src, None))
                }
            }
        })
    }
}

impl<C: Send + Sync + 'static> DestinationSpec<C> {
    pub fn build<'a>(
        &'a self,
        creds: &'a dyn Credentials<C>,
        opts: &'a BuildOptions,
    ) -> Built<'a, Arc<dyn Destination>> {
        Box::pin(async move {
            match self {
                DestinationSpec::Zohodesk {
                    mode,
                    dc,
                    api_base,
                    accounts_base,
                    org_id,
                    client_id,
                    client_secret,
                    refresh_token,
                    concurrency_cap,
                    default_department,
                    package_dir,
                    retry,
                } => match mode.as_str() {
                    "rest" => {
                        let mut cfg = zoho_config(
                            "destination",
                            dc.as_deref(),
                            api_base.as_ref(),
                            accounts_base.as_ref(),
                            org_id,
                            client_id,
                            client_secret,
                            refresh_token,
                            *concurrency_cap,
                            retry.as_ref(),
                            creds,
                            opts,
                        )
                        .await?;
                        cfg.default_department = default_department.clone();
                        Ok(if opts.lazy {
                            Arc::new(LazyZohoDesk::new(cfg)) as Arc<dyn Destination>
                        } else {
                            Arc::new(ZohoDesk::connect(cfg).await?)
                        })
                    }
                    "import-package" => {
                        let Some(base) = &opts.base_dir else {
                            bail!(
                                "destination.mode = \"import-package\" writes files on this machine: use it with the \
                             deskshift command, or mode = \"rest\" here"
                            );
                        };
                        let dir = match (package_dir, &opts.job_dir) {
                            (Some(d), _) => base.join(d),
                            (None, Some(job_dir)) => job_dir.join("zoho-import-package"),
                            (None, None) => base.join("zoho-import-package"),
                        };
                        let package = ZohoImportPackage::open(dir).with_context(
                            || "destination.package_dir: cannot open the import package directory",
                        )?;
                        Ok(Arc::new(package) as Arc<dyn Destination>)
                    }
                    other => {
                        bail!("destination.mode = {other:?}: use \"rest\" or \"import-package\"")
                    }
                },
                DestinationSpec::Jsm {
                    base_url,
                    email,
                    api_token,
                    service_desk,
                    department_desks,
                    request_type,
                    department_request_types,
                    category_mode,
                    category_field,
                    legacy_id_field,
                    link_type,
                    concurrency_cap,
                    per_issue_writes_per_second,
                    verify_download_max_bytes,
                    retry,
                } => {
                    let mut cfg = deskshift_jsm::JsmConfig {
                        base_url: base_url.clone(),
                        email: email.clone(),
                        api_token: creds.read("destination.api_token", api_token).await?,
                        service_desk: service_desk.clone(),
                        department_desks: department_desks.clone(),
                        request_type: request_type.clone(),
                        department_request_types: department_request_types.clone(),
                        ..Default::default()
                    };
                    if let Some(m) = category_mode {
                        cfg.category_mode = *m;
                    }
                    if let Some(f) = category_field {
                        cfg.category_field = f.clone();
                    }
                    if let Some(f) = legacy_id_field {
                        cfg.legacy_id_field = f.clone();
                    }
                    if let Some(l) = link_type {
                        cfg.link_type = l.clone();
                    }
                    if let Some(c) = concurrency_cap {
                        cfg.concurrency_cap = *c;
                    }
                    if let Some(w) = per_issue_writes_per_second {
                        cfg.per_issue_writes_per_second = *w;
                    }
                    if let Some(b) = verify_download_max_bytes {
                        cfg.verify_download_max_bytes = *b;
                    }
                    if let Some(r) = retry {
                        cfg.retry = r.clone();
                    }
                    Ok(Arc::new(deskshift_jsm::Jsm::new(cfg)?) as Arc<dyn Destination>)
                }
            }
        })
    }
}

impl<C: Send + Sync + 'static> JobSpec<C> {
    /// Source, its time zone, and destination.
    #[allow(clippy::type_complexity)]
    pub fn connectors<'a>(
        &'a self,
        creds: &'a dyn Credentials<C>,
        opts: &'a BuildOptions,
    ) -> Built<
        'a,
        (
            Arc<dyn Source>,
            Option<jiff::tz::TimeZone>,
            Arc<dyn Destination>,
        ),
    > {
        Box::pin(async move {
            let (source, zone) = self.source.build(&self.settings, creds, opts).await?;
            let dest = self.destination.build(creds, opts).await?;
            Ok((source, zone, dest))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
    struct Named {
        secret: String,
    }

    struct Table;

    #[async_trait]
    impl Credentials<Named> for Table {
        async fn read(&self, setting: &str, r: &Named) -> anyhow::Result<Secret> {
            if r.secret.is_empty() {
                bail!("{setting} is not set");
            }
            Ok(Secret::new(format!("value-of-{}", r.secret)))
        }
    }

    #[test]
    fn specs_read_both_paths() {
        let j: JobSpec<Named> = serde_json::from_value(serde_json::json!({
            "source": {"platform": "zohodesk", "api_base": "http://127.0.0.1:1", "accounts_base": "http://127.0.0.1:1",
                        "org_id": "1", "client_id": "c", "client_secret": {"secret": "s"}, "refresh_token": {"secret": "r"},
                        "retry": {"max_attempts": 2}},
            "destination": {"platform": "jsm", "base_url": "http://127.0.0.1:2", "email": "a@b.c", "api_token": {"secret": "t"}}
        }))
        .unwrap();
        let SourceSpec::Zohodesk { zoho } = &j.source else {
            panic!("zoho source expected")
        };
        assert_eq!(zoho.retry.as_ref().unwrap().max_attempts, 2);
        let unknown = serde_json::from_value::<JobSpec<Named>>(serde_json::json!({
            "source": {"platform": "ivinex", "base_url": "x", "user": "u", "password": {"secret": "p"}, "timezone": "UTC", "nope": 1},
            "destination": {"platform": "jsm", "base_url": "x", "email": "e", "api_token": {"secret": "t"}}
        }));
        assert!(unknown.is_err(), "unknown fields are refused");
    }

    #[tokio::test]
    async fn lazy_builds_make_no_call_and_missing_credentials_are_named() {
        let j: JobSpec<Named> = serde_json::from_value(serde_json::json!({
            "source": {"platform": "zohodesk", "api_base": "http://127.0.0.1:9", "accounts_base": "http://127.0.0.1:9",
                        "org_id": "1", "client_id": "c", "client_secret": {"secret": "s"}, "refresh_token": {"secret": "r"}},
            "destination": {"platform": "zohodesk", "api_base": "http://127.0.0.1:9", "accounts_base": "http://127.0.0.1:9",
                        "org_id": "2", "client_id": "c", "client_secret": {"secret": "s"}}
        }))
        .unwrap();
        let opts = BuildOptions {
            lazy: true,
            ..Default::default()
        };
        // Nothing listens on port 9: a lazy build must not call it.
        let (src, zone, _) = j
            .source
            .build(&j.settings, &Table, &opts)
            .await
            .map(|(s, z)| (s, z, ()))
            .unwrap();
        assert_eq!(src.platform(), "Zoho Desk");
        assert!(zone.is_none());
        let err = j.destination.build(&Table, &opts).await.err().unwrap();
        assert!(
            err.to_string()
                .contains("destination.refresh_token is not set"),
            "{err}"
        );
        let pkg: DestinationSpec<Named> = serde_json::from_value(
            serde_json::json!({"platform": "zohodesk", "mode": "import-package"}),
        )
        .unwrap();
        let err = pkg.build(&Table, &opts).await.err().unwrap();
        assert!(err.to_string().contains("import-package"), "{err}");
    }
}
