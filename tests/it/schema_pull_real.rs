//! `coupler schema pull` on real-shaped CSDL: a trimmed copy of Microsoft Graph's published
//! v1.0 `$metadata` (element-form and out-of-line annotations, several namespaces with aliases,
//! types of the same name in two namespaces), served by a loopback server, and a Dataverse-style
//! document with a custom lookup and its navigation property.

use crate::support::http::loopback::serve;
use coupler::analysis::SystemKind;
use coupler::schema::pull::{self, PullOptions};
use coupler::schema::{Catalog, FieldType, Nav};
use std::path::Path;

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/metadata")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn convert(xml: &str, kind: SystemKind) -> (String, Catalog) {
    let yaml = pull::catalog_from_csdl(xml, kind, &PullOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let catalog = Catalog::parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(catalog.validate(), Vec::<String>::new(), "{yaml}");
    (yaml, catalog)
}

/// The Graph document as a loopback endpoint serves it.
fn graph_over_http() -> String {
    let xml = read("msgraph-v1.0-trimmed.xml");
    let app = axum::Router::new().route(
        "/v1.0/$metadata",
        axum::routing::get(move || {
            let xml = xml.clone();
            async move { ([("content-type", "application/xml")], xml) }
        }),
    );
    let port = serve(app);
    let url = format!("http://127.0.0.1:{port}/v1.0/$metadata");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(get(&url))
}

async fn get(url: &str) -> String {
    let url: url::Url = url.parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap()))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        url.path()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut body = Vec::new();
    stream.read_to_end(&mut body).await.unwrap();
    let text = String::from_utf8(body).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

#[test]
fn microsoft_graph_element_form_annotations_and_namespaces() {
    let xml = graph_over_http();
    let (yaml, c) = convert(&xml, SystemKind::Dataverse);
    // Same name in two namespaces: the first keeps it, the other is named by its qualified name.
    for t in [
        "user",
        "microsoft.graph.security.user",
        "group",
        "microsoft.graph.termStore.group",
    ] {
        assert!(c.tables.contains_key(t), "{t}: {:?}", c.tables.keys());
    }
    assert_eq!(c.tables["user"].api.as_deref(), Some("users"));
    assert!(c.tables["user"].fields.contains_key("userPrincipalName"));
    // The security user's base type is named through the alias `self`; its key through `graph`.
    assert_eq!(c.tables["microsoft.graph.security.user"].key, ["id"]);
    assert!(yaml.contains("is the table \"microsoft.graph.security.user\""));
    // Out-of-line annotations (in another schema), element form.
    let community = &c.tables["community"].fields;
    assert!(
        community["groupId"].read_only,
        "Permissions Read, element form"
    );
    assert!(!community["displayName"].read_only);
    let message = &c.tables["engagementConversationMessage"].fields;
    assert!(
        message["replyToId"].read_only,
        "Permissions Read, element form"
    );
    assert!(!message["creationMode"].read_only, "Permissions Write");
    assert!(
        message["createdDateTime"].read_only,
        "Computed Bool attribute"
    );
    let app = &c.tables["androidStoreApp"];
    assert!(app.fields["packageId"].read_only);
    assert_eq!(app.key, ["id"], "key through mobileApp and entity");
    // Abstract types are no tables.
    assert!(!c.tables.contains_key("entity") && !c.tables.contains_key("mobileApp"));
}

#[test]
fn dataverse_custom_lookup_keeps_its_navigation_property() {
    let (yaml, c) = convert(&read("dataverse-custom-lookup.xml"), SystemKind::Dataverse);
    let task = &c.tables["msdyn_projecttask"].fields;
    let project = &task["msdyn_project"];
    assert_eq!(project.ty, FieldType::Lookup);
    assert_eq!(project.lookup, ["msdyn_project"]);
    assert_eq!(
        project.nav.as_deref(),
        Some(&Nav::One("msdyn_Project".into()))
    );
    assert!(
        yaml.contains("msdyn_project: { type: lookup, lookup: msdyn_project, nav: msdyn_Project }"),
        "{yaml}"
    );
    let customer = &task["msdyn_customer"];
    assert_eq!(customer.lookup, ["account", "contact"]);
    assert_eq!(customer.nav_for("account"), Some("msdyn_customer_account"));
    assert_eq!(customer.nav_for("contact"), Some("msdyn_customer_contact"));
    assert_eq!(task["ownerid"].lookup, ["systemuser", "team"]);
    assert_eq!(task["ownerid"].nav_for("team"), Some("ownerid"));
    // Element-form annotations, inline and out of line; `<Bool>false</Bool>` is not read-only.
    assert!(task["msdyn_effort"].read_only);
    assert!(task["msdyn_remaininghours"].read_only);
    assert!(!task["msdyn_progress"].read_only);
    assert!(c.tables["systemuser"].fields["fullname"].read_only);
    // principal's key is ownerid; the users and teams are keyed by their own ids.
    assert_eq!(c.tables["systemuser"].key, ["systemuserid"]);
    assert_eq!(c.tables["team"].key, ["teamid"]);
}

#[test]
fn deeply_nested_metadata_is_a_clear_error() {
    let depth = 100_000;
    let xml = format!(
        "<edmx:Edmx xmlns:edmx=\"x\">{}{}</edmx:Edmx>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    let err =
        pull::catalog_from_csdl(&xml, SystemKind::Dataverse, &PullOptions::default()).unwrap_err();
    assert!(err.message.contains("deeper than 256 levels"), "{err}");
}
