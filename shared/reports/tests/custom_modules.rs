//! Records a ticket looks up in a Zoho Desk custom module: staged by the extract, written whole
//! into the migration package, and named in the ticket's field.

use std::sync::Arc;

use deskshift_core::job::{Job, NoProgress, Settings};
use deskshift_core::model::{CanonicalRecord, ObjectKind, RawRecord};
use deskshift_core::phases;
use deskshift_core::ports::{Destination, Source};
use deskshift_core::transform::Transformer;
use deskshift_reports::{PackageOptions, write_package};
use deskshift_store_embedded::{FileStage, SqliteStore};
use deskshift_zohodesk::ZohoImportPackage;
use deskshift_zohodesk_source::{ZohoDeskSource, ZohoSourceConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_module_records_go_to_the_package_and_tickets_name_them() {
    let org = sandbox_kit::serve(sandbox_zohodesk::custom_module_org(), 0)
        .await
        .unwrap();
    let mut cfg = ZohoSourceConfig::for_dc("com").unwrap();
    cfg.connection.api_base = org.base_url.clone();
    cfg.connection.accounts_base = org.base_url.clone();
    cfg.connection.org_id = "77".into();
    cfg.connection.client_id = "cid".into();
    cfg.connection.client_secret = "secret".into();
    cfg.connection.refresh_token = "refresh".into();
    cfg.scan_description_thread = false;
    let source = ZohoDeskSource::connect(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job_dir = dir.path().join("job");
    std::fs::create_dir_all(&job_dir).unwrap();
    let store = SqliteStore::open_in_job(&job_dir).unwrap();
    let dest = ZohoImportPackage::open(job_dir.join("import-package")).unwrap();
    let job = Job {
        settings: Settings::default(),
        source: Arc::new(source) as Arc<dyn Source>,
        dest: Arc::new(dest) as Arc<dyn Destination>,
        crosswalk: store.clone(),
        checkpoints: store.clone(),
        audit: store,
        stage: FileStage::open_in_job(&job_dir).unwrap(),
        progress: Arc::new(NoProgress),
        source_zone: None,
        dest_info: Default::default(),
    };
    phases::propose_mapping(&job).await.unwrap();
    phases::approve(&job, "custom module test", true)
        .await
        .unwrap();
    phases::extract(&job).await.unwrap();

    // The package holds every record of the module, as read.
    let reports = job_dir.join("reports");
    let index = write_package(&job, &reports, &PackageOptions::default())
        .await
        .unwrap();
    let file = reports.join("records-custommodule-cm-assets.json");
    let records: Vec<RawRecord> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["900", "901"]);
    assert_eq!(records[1].fields["cf_serial"], "SN2");
    let listed = serde_json::to_string(&index).unwrap();
    assert!(
        listed.contains("records-custommodule-cm-assets.json")
            && listed.contains("ticket \\\"Asset\\\""),
        "the package index lists the module and the field that names it: {listed}"
    );

    // The ticket's field names the record it looks up.
    let map = phases::approved_map(&job).await.unwrap();
    let t = Transformer::new(&map, Default::default(), None)
        .with_lookups(phases::lookups(&job, &map).await.unwrap());
    let tickets = phases::staged_records(&job, "Tickets").await.unwrap();
    let CanonicalRecord::Ticket(ticket) =
        t.transform(ObjectKind::Ticket, &tickets[0]).unwrap().record
    else {
        panic!("a ticket")
    };
    assert_eq!(
        ticket.custom.get("Asset").map(|v| v.as_text()).as_deref(),
        Some("Laptop 7 (900)")
    );
    org.stop().await;
}
