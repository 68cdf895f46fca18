//! `coupler schema pull`: $metadata (CSDL) -> schema catalog. The conversion on the fixtures in
//! `tests/fixtures/metadata/`, and the real binary: `--from-file`, `--only`, errors, a pulled
//! catalog used by `coupler check`, and fetching from a loopback mock endpoint (with OAuth and
//! Dataverse's Metadata API for `--option-sets`).

use crate::support::coupler::Coupler;
use coupler::analysis::SystemKind;
use coupler::schema::pull::{self, OptionSetValues, PullOptions};
use coupler::schema::{Catalog, FieldType};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use tempfile::TempDir;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/metadata")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn convert(name: &str, kind: SystemKind, only: &[&str]) -> (String, Catalog) {
    let options = PullOptions {
        only: only.iter().map(|s| s.to_string()).collect(),
        source: Some(name.to_string()),
        ..PullOptions::default()
    };
    let yaml = pull::catalog_from_csdl(&read(name), kind, &options)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let catalog = Catalog::parse(&yaml).unwrap_or_else(|e| panic!("{name}: {e}\n{yaml}"));
    assert_eq!(catalog.validate(), Vec::<String>::new(), "{yaml}");
    (yaml, catalog)
}

fn coupler(dir: &Path, args: &[&str]) -> Output {
    Coupler::new().args(args).current_dir(dir).output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn options_of(catalog: &Catalog, table: &str, field: &str) -> Vec<(String, i64)> {
    catalog.tables[table].fields[field]
        .options
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

#[test]
fn dataverse_fixture_types_keys_lookups() {
    let (yaml, c) = convert("dataverse.xml", SystemKind::Dataverse, &[]);
    assert_eq!(c.system, "dataverse");
    let names: Vec<&str> = c.tables.keys().map(String::as_str).collect();
    // Abstract types (crmbaseentity, principal) are no tables; sorted by name.
    assert_eq!(
        names,
        [
            "account",
            "contact",
            "systemuser",
            "team",
            "transactioncurrency"
        ]
    );
    let account = &c.tables["account"];
    assert_eq!(account.api.as_deref(), Some("accounts"));
    assert_eq!(account.key, ["accountid"]);
    assert_eq!(account.modified_on.as_deref(), Some("modifiedon"));
    assert_eq!(account.modified_by.as_deref(), Some("modifiedby"));
    // Key first.
    assert_eq!(account.fields.keys().next().unwrap(), "accountid");
    let f = &account.fields;
    assert_eq!(f["accountid"].ty, FieldType::Guid);
    assert_eq!(
        (f["name"].ty, f["name"].length),
        (FieldType::Text, Some(160))
    );
    assert_eq!(f["description"].length, None);
    assert_eq!(f["creditlimit"].ty, FieldType::Decimal);
    assert_eq!(f["creditonhold"].ty, FieldType::Boolean);
    assert_eq!(f["numberofemployees"].ty, FieldType::Integer);
    assert_eq!(f["versionnumber"].ty, FieldType::Bigint);
    // Choices are Edm.Int32 in $metadata.
    assert_eq!(f["customertypecode"].ty, FieldType::Integer);
    // `_x_value` -> lookup column `x`.
    assert!(!f.contains_key("_parentaccountid_value"));
    assert_eq!(f["parentaccountid"].ty, FieldType::Lookup);
    assert_eq!(f["parentaccountid"].lookup, ["account"]);
    assert_eq!(f["transactioncurrencyid"].lookup, ["transactioncurrency"]);
    // Owner via the abstract `principal`: its catalogued subtypes.
    assert_eq!(f["ownerid"].lookup, ["systemuser", "team"]);
    // businessunit is not in $metadata: target dropped, said so.
    assert_eq!(f["owningbusinessunit"].ty, FieldType::Lookup);
    assert!(f["owningbusinessunit"].lookup.is_empty());
    assert!(yaml.contains(
        "owningbusinessunit: { type: lookup }   # lookup target not in this catalog: businessunit"
    ));
    // System stamps and annotations.
    assert!(f["modifiedon"].read_only && f["createdon"].read_only);
    assert!(f["modifiedby"].read_only);
    assert_eq!(f["modifiedby"].lookup, ["systemuser"]);
    assert!(f["versionnumber"].read_only, "Core.Permissions=Read");
    assert!(f["lastonholdtime"].read_only, "Core.Computed (alias)");
    assert!(!f["name"].read_only);

    let contact = &c.tables["contact"].fields;
    assert_eq!(contact["parentcustomerid"].lookup, ["account", "contact"]);
    assert!(contact["fullname"].read_only, "inline Core.Computed");
    assert_eq!(contact["birthdate"].ty, FieldType::Date);
    assert_eq!(contact["entityimage"].ty, FieldType::Blob);
    assert_eq!(c.tables["systemuser"].key, ["systemuserid"]);
    assert_eq!(c.tables["team"].modified_by, None);
    // The header documents the limits.
    assert!(yaml.starts_with("# Dataverse schema catalog pulled by `coupler schema pull`"));
    assert!(yaml.contains("--option-sets"));
}

#[test]
fn business_central_fixture_api_names_and_enums() {
    let (yaml, c) = convert("business-central.xml", SystemKind::BusinessCentral, &[]);
    assert_eq!(c.system, "business_central");
    let customer = &c.tables["customer"];
    assert_eq!(customer.api.as_deref(), Some("customers"));
    assert_eq!(customer.key, ["id"]);
    assert_eq!(
        customer.modified_on.as_deref(),
        Some("lastModifiedDateTime")
    );
    assert_eq!(customer.modified_by, None);
    let f = &customer.fields;
    // Names are API names, and `api:` repeats them.
    assert_eq!(f["displayName"].api.as_deref(), Some("displayName"));
    assert_eq!(
        (f["number"].ty, f["number"].length),
        (FieldType::Text, Some(20))
    );
    assert_eq!(f["blocked"].ty, FieldType::Option);
    assert_eq!(
        options_of(&c, "customer", "blocked"),
        [
            (" ".to_string(), 0),
            ("Ship".into(), 1),
            ("Invoice".into(), 2),
            ("All".into(), 3)
        ]
    );
    assert_eq!(f["currencyId"].ty, FieldType::Guid);
    assert_eq!(f["currencyId"].lookup, ["currency"]);
    assert_eq!(f["paymentTermsId"].lookup, ["paymentTerm"]);
    assert!(f["shipmentMethodId"].lookup.is_empty());
    assert!(yaml.contains("lookup target not in this catalog: shipmentMethod"));
    assert!(f["balanceDue"].read_only);
    assert!(f["lastModifiedDateTime"].read_only);
    assert!(!f.contains_key("postalAddress"), "complex type left out");
    assert!(yaml.contains("Not catalogued (no catalog type): postalAddress"));
    // Items: enum `type` with decoded members, boolean `blocked`.
    assert_eq!(
        options_of(&c, "item", "type"),
        [
            ("Inventory".to_string(), 0),
            ("Service".into(), 1),
            ("Non-Inventory".into(), 2)
        ]
    );
    assert_eq!(c.tables["item"].fields["blocked"].ty, FieldType::Boolean);
    assert!(!c.tables["item"].fields.contains_key("tags"));
    // Members without values count from 0.
    assert_eq!(
        options_of(&c, "salesOrder", "status"),
        [
            ("Draft".to_string(), 0),
            ("In Review".into(), 1),
            ("Open".into(), 2)
        ]
    );
    let order = &c.tables["salesOrder"].fields;
    assert_eq!(order["orderDate"].ty, FieldType::Date);
    assert_eq!(order["customerId"].lookup, ["customer"]);
    assert!(order["totalAmountIncludingTax"].read_only);
    let line = &c.tables["salesOrderLine"].fields;
    assert_eq!(line["itemId"].lookup, ["item"]);
    assert!(!line["documentId"].read_only, "Computed Bool=false");
    assert_eq!(line["sequence"].ty, FieldType::Integer);
    assert!(yaml.contains("you\n# may rename tables and fields to AL names"));
}

#[test]
fn cap_service_fixture() {
    let (_, c) = convert("cap-dataverse-service.xml", SystemKind::Dataverse, &[]);
    let names: Vec<&str> = c.tables.keys().map(String::as_str).collect();
    assert_eq!(names, ["accounts", "contacts", "products"]);
    let contacts = &c.tables["contacts"];
    assert_eq!(contacts.api.as_deref(), Some("contacts"));
    let fk = &contacts.fields["parentcustomerid_account_accountid"];
    assert_eq!(
        (fk.ty, fk.lookup.clone()),
        (FieldType::Guid, vec!["accounts".to_string()])
    );
    // External `Core.Computed` annotations (alias `Core`).
    assert!(contacts.fields["modifiedon"].read_only);
    assert!(
        !contacts.fields["contactid"].read_only,
        "ComputedDefaultValue is not read-only"
    );
    assert_eq!(c.tables["accounts"].fields["name"].length, Some(160));
}

/// The $metadata of the CAP test server (`tests/servers/cap`), both services.
#[test]
fn cap_test_server_fixtures() {
    let (yaml, dv) = convert("cap-test-dataverse.xml", SystemKind::Dataverse, &[]);
    let accounts = &dv.tables["accounts"];
    assert_eq!(accounts.key, ["accountid"]);
    assert_eq!(accounts.modified_by.as_deref(), Some("modifiedby"));
    assert_eq!(accounts.fields["ownerid"].lookup, ["systemusers", "teams"]);
    assert_eq!(
        accounts.fields["transactioncurrencyid"].lookup,
        ["transactioncurrencies"]
    );
    assert_eq!(accounts.fields["name"].length, Some(160));
    assert!(yaml.contains("modifiedby: { type: lookup, read_only: true }   # target unknown"));
    let (_, bc) = convert(
        "cap-test-business-central.xml",
        SystemKind::BusinessCentral,
        &[],
    );
    let customers = &bc.tables["customers"];
    assert_eq!(customers.key, ["id"]);
    assert_eq!(
        customers.modified_on.as_deref(),
        Some("lastModifiedDateTime")
    );
    assert_eq!(customers.fields["company_id"].lookup, ["companies"]);
    assert_eq!(
        customers.fields["displayName"].api.as_deref(),
        Some("displayName")
    );
}

#[test]
fn output_is_deterministic() {
    for (name, kind) in [
        ("dataverse.xml", SystemKind::Dataverse),
        ("business-central.xml", SystemKind::BusinessCentral),
        ("cap-dataverse-service.xml", SystemKind::Dataverse),
        ("cap-test-business-central.xml", SystemKind::BusinessCentral),
    ] {
        let (a, _) = convert(name, kind, &[]);
        let (b, _) = convert(name, kind, &[]);
        assert_eq!(a, b, "{name}");
    }
    let dir = TempDir::new().unwrap();
    let file = fixture("business-central.xml");
    let args = [
        "schema",
        "pull",
        "bc",
        "--kind",
        "business_central",
        "--from-file",
        file.to_str().unwrap(),
    ];
    let first = coupler(dir.path(), &args);
    let second = coupler(dir.path(), &args);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert!(!first.stdout.is_empty());
    assert_eq!(first.stdout, second.stdout);
}

#[test]
fn only_pulls_a_subset_and_drops_lookups_out_of_it() {
    let (yaml, c) = convert(
        "dataverse.xml",
        SystemKind::Dataverse,
        &["account", "contacts"],
    );
    let names: Vec<&str> = c.tables.keys().map(String::as_str).collect();
    assert_eq!(names, ["account", "contact"]);
    let f = &c.tables["account"].fields;
    assert!(f["ownerid"].lookup.is_empty());
    assert!(f["modifiedby"].lookup.is_empty());
    assert_eq!(f["parentaccountid"].lookup, ["account"]);
    assert!(yaml.contains("# Tables: only account, contacts."));
    assert!(yaml.contains("lookup targets not in this catalog: systemuser, team"));

    // The binary: comma-separated, and an unknown name is a usage error with a suggestion.
    let dir = TempDir::new().unwrap();
    let file = fixture("business-central.xml");
    let out = coupler(
        dir.path(),
        &[
            "schema",
            "pull",
            "bc",
            "--kind",
            "business_central",
            "--from-file",
            file.to_str().unwrap(),
            "--only",
            "customers,currency",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let c = Catalog::parse(&text(&out.stdout)).unwrap();
    assert_eq!(
        c.tables.keys().collect::<Vec<_>>(),
        ["currency", "customer"]
    );
    assert!(c.validate().is_empty());
    let out = coupler(
        dir.path(),
        &[
            "schema",
            "pull",
            "bc",
            "--kind",
            "business_central",
            "--from-file",
            file.to_str().unwrap(),
            "--only",
            "custmer",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("`custmer`") && err.contains("did you mean `customer`?"),
        "{err}"
    );
}

#[test]
fn malformed_xml_exits_2_naming_the_line() {
    let dir = TempDir::new().unwrap();
    let file = fixture("malformed.xml");
    let out = coupler(
        dir.path(),
        &[
            "schema",
            "pull",
            "bc",
            "--kind",
            "business_central",
            "--from-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(err.contains("malformed.xml:9:"), "{err}");
    assert!(err.contains("not well-formed"), "{err}");

    // The library reports the line too, also for a document cut short.
    let e = pull::parse_csdl(&read("malformed.xml")).unwrap_err();
    assert_eq!(e.line, Some(9));
    let cut: String = read("dataverse.xml")
        .lines()
        .take(20)
        .collect::<Vec<_>>()
        .join("\n");
    let e = pull::parse_csdl(&cut).unwrap_err();
    assert!(e.message.contains("is closed"), "{e}");
    assert_eq!(e.line, Some(20));
    let e = pull::parse_csdl("<html><body/></html>").unwrap_err();
    assert!(e.message.contains("not an OData $metadata document"), "{e}");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = TempDir::new().unwrap();
    // Missing file.
    let out = coupler(
        dir.path(),
        &[
            "schema",
            "pull",
            "bc",
            "--kind",
            "dataverse",
            "--from-file",
            "nope.xml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read `nope.xml`"));
    // No kind and no mapping files.
    let file = fixture("dataverse.xml");
    let out = coupler(
        dir.path(),
        &[
            "schema",
            "pull",
            "sales",
            "--from-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--kind"),
        "{}",
        text(&out.stderr)
    );
    // Neither a profile nor a file.
    let out = coupler(dir.path(), &["schema", "pull", "sales"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The kind comes from the mapping files; the pulled catalogs are usable by `coupler check`.
#[test]
fn pulled_catalogs_pass_coupler_check() {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("mappings")).unwrap();
    std::fs::create_dir_all(root.join("schemas")).unwrap();
    let map = r#"system bc    = business_central "../schemas/bc.yaml"
system sales = dataverse        "../schemas/sales.yaml"

mapping CURRENCY: bc.currency -> sales.transactioncurrency {
    fields {
        code        -> isocurrencycode | truncate(5)
        displayName -> currencyname
    }
}

mapping CUSTOMER: bc.customer -> sales.account {
    where bc: blocked != 'All'
    fields {
        number      -> accountnumber
        displayName -> name
        phoneNumber -> telephone1
        email       -> emailaddress1
        currencyId  -> transactioncurrencyid via CURRENCY
        blocked     -> creditonhold | map { ' ' => false, 'Ship' => true, 'Invoice' => true, 'All' => true }
    }
}
"#;
    std::fs::write(root.join("mappings/customers.map"), map).unwrap();
    for (system, file, out) in [
        ("bc", "business-central.xml", "schemas/bc.yaml"),
        ("sales", "dataverse.xml", "schemas/sales.yaml"),
    ] {
        let xml = fixture(file);
        let res = coupler(
            root,
            &[
                "schema",
                "pull",
                system,
                "--from-file",
                xml.to_str().unwrap(),
                "--output",
                out,
            ],
        );
        assert_eq!(res.status.code(), Some(0), "{}", text(&res.stderr));
        assert!(res.stdout.is_empty());
        assert!(text(&res.stderr).contains(&format!("wrote {out}")));
    }
    let res = coupler(root, &["check", "--deny-warnings"]);
    assert_eq!(
        res.status.code(),
        Some(0),
        "{}{}",
        text(&res.stdout),
        text(&res.stderr)
    );
    // A mapping that uses a field the catalog does not have is still caught.
    std::fs::write(
        root.join("mappings/customers.map"),
        map.replace("phoneNumber -> telephone1", "phoneNo -> telephone1"),
    )
    .unwrap();
    let res = coupler(root, &["check"]);
    assert_eq!(res.status.code(), Some(1));
    // An undeclared system is a usage error that names the declared ones.
    let xml = fixture("dataverse.xml");
    let res = coupler(
        root,
        &[
            "schema",
            "pull",
            "sale",
            "--from-file",
            xml.to_str().unwrap(),
        ],
    );
    assert_eq!(res.status.code(), Some(2));
    assert!(
        text(&res.stderr).contains("did you mean `sales`?"),
        "{}",
        text(&res.stderr)
    );
}

#[test]
fn option_sets_turn_integers_into_options() {
    let csdl = pull::parse_csdl(&read("dataverse.xml")).unwrap();
    let mut sets: BTreeMap<String, BTreeMap<String, OptionSetValues>> = BTreeMap::new();
    let state = OptionSetValues {
        name: None,
        options: vec![("Active".into(), 0), ("Inactive".into(), 1)],
    };
    let shared = OptionSetValues {
        name: Some("shared_codes".into()),
        options: vec![
            ("One".into(), 100000000),
            ("One".into(), 100000001),
            ("".into(), 7),
        ],
    };
    sets.entry("account".into())
        .or_default()
        .insert("statecode".into(), state.clone());
    sets.entry("account".into())
        .or_default()
        .insert("customertypecode".into(), shared.clone());
    sets.entry("team".into())
        .or_default()
        .insert("teamtype".into(), shared);
    let options = PullOptions {
        option_sets: sets,
        ..PullOptions::default()
    };
    let catalog = pull::build_catalog(&csdl, SystemKind::Dataverse, &options).unwrap();
    let code = catalog
        .table("account")
        .unwrap()
        .field("customertypecode")
        .unwrap();
    assert_eq!(code.ty, "option");
    // Duplicate and empty labels are made unique.
    assert_eq!(
        code.options,
        [
            ("One".to_string(), 100000000),
            ("One (100000001)".into(), 100000001),
            ("7".into(), 7)
        ]
    );
    // Shared by two fields with identical values: option_set kept.
    assert_eq!(code.option_set.as_deref(), Some("shared_codes"));
    let yaml = pull::render(&catalog);
    let c = Catalog::parse(&yaml).unwrap();
    assert!(c.validate().is_empty());
    assert_eq!(
        c.tables["account"].fields["statecode"].ty,
        FieldType::Option
    );
    assert_eq!(
        c.tables["account"].fields["statuscode"].ty,
        FieldType::Integer
    );
    assert!(yaml.contains("Choice values of 3 column(s) come from the Metadata API"));
}

// ---------------------------------------------------------------------------------------------
// Fetching from an endpoint: a loopback mock with a token endpoint, $metadata and the Metadata API.
// ---------------------------------------------------------------------------------------------

mod mock {
    use crate::support::http::token::Tokens;
    use axum::extract::{Path as UrlPath, Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::Router;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    type Shared = Arc<Mutex<Tokens>>;

    /// The client of the test profile (`client_id: app`, secret `s3cret`), asking for a loopback
    /// scope; a refused secret is a `400`.
    fn tokens() -> Tokens {
        let mut tokens = Tokens::new("app", "s3cret", 3599);
        tokens.refused = 400;
        tokens.scope = Some("http://127.0.0.1".into());
        tokens
    }

    fn authorized(tokens: &Shared, headers: &HeaderMap) -> bool {
        let header = headers.get("authorization").and_then(|v| v.to_str().ok());
        tokens.lock().unwrap().accepts(header)
    }

    async fn token(State(tokens): State<Shared>, body: String) -> impl IntoResponse {
        let (status, answer) = tokens.lock().unwrap().respond(body.as_bytes());
        (StatusCode::from_u16(status).unwrap(), answer.to_string())
    }

    async fn metadata(State(tokens): State<Shared>, headers: HeaderMap) -> impl IntoResponse {
        if !authorized(&tokens, &headers) {
            return (StatusCode::UNAUTHORIZED, String::new());
        }
        let xml = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/metadata/dataverse.xml"),
        )
        .unwrap();
        (StatusCode::OK, xml)
    }

    /// `EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`
    async fn attributes(
        State(tokens): State<Shared>,
        headers: HeaderMap,
        UrlPath((entity, cast)): UrlPath<(String, String)>,
        Query(q): Query<HashMap<String, String>>,
    ) -> impl IntoResponse {
        if !authorized(&tokens, &headers)
            || q.get("$expand").map(String::as_str) != Some("OptionSet")
        {
            return (StatusCode::UNAUTHORIZED, String::new());
        }
        let body = match (entity.as_str(), cast.as_str()) {
            (
                "EntityDefinitions(LogicalName='account')",
                "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
            ) => {
                r#"{"value":[{"LogicalName":"customertypecode","OptionSet":{"Name":"account_customertypecode","IsGlobal":false,
                   "Options":[{"Value":1,"Label":{"UserLocalizedLabel":{"Label":"Competitor"}}},
                              {"Value":3,"Label":{"UserLocalizedLabel":null,"LocalizedLabels":[{"Label":"Customer"}]}}]}}]}"#
            }
            (_, "Microsoft.Dynamics.CRM.StateAttributeMetadata") => {
                r#"{"value":[{"LogicalName":"statecode","OptionSet":{"Options":[
                   {"Value":0,"Label":{"UserLocalizedLabel":{"Label":"Active"}}},
                   {"Value":1,"Label":{"UserLocalizedLabel":{"Label":"Inactive"}}}]}}]}"#
            }
            _ => r#"{"value":[]}"#,
        };
        (StatusCode::OK, body.to_string())
    }

    /// Serves on 127.0.0.1 in a background thread; returns the port.
    pub fn start() -> u16 {
        crate::support::http::loopback::serve(
            Router::new()
                .route("/tenant/oauth2/v2.0/token", post(token))
                .route("/api/data/v9.2/$metadata", get(metadata))
                .route("/api/data/v9.2/{entity}/Attributes/{cast}", get(attributes))
                .with_state(Arc::new(Mutex::new(tokens()))),
        )
    }
}

fn project_with_profile(url: &str, token_url: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("mappings")).unwrap();
    std::fs::write(
        root.join("mappings/systems.map"),
        "system sales = dataverse \"../schemas/sales.yaml\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("coupler.yaml"),
        format!(
            "profiles:\n  live:\n    state: state/coupler.db\n    systems:\n      sales:\n        kind: dataverse\n        url: {url}\n        auth:\n          tenant: tenant\n          client_id: app\n          client_secret: ${{PULL_TEST_SECRET}}\n          token_url: {token_url}\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn pulls_from_a_live_endpoint_with_oauth_and_option_sets() {
    let port = mock::start();
    let base = format!("http://127.0.0.1:{port}");
    // The org root: the Web API path is added.
    let dir = project_with_profile(&base, &format!("{base}/tenant/oauth2/v2.0/token"));
    let run = |args: &[&str]| {
        Coupler::new()
            .args(args)
            .current_dir(dir.path())
            .env("PULL_TEST_SECRET", "s3cret")
            .output()
    };
    let out = run(&["schema", "pull", "--profile", "live", "sales"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains(&format!("#   {base}/api/data/v9.2/$metadata")),
        "{yaml}"
    );
    let from_file = pull::catalog_from_csdl(
        &read("dataverse.xml"),
        SystemKind::Dataverse,
        &PullOptions {
            source: Some(format!("{base}/api/data/v9.2/$metadata")),
            ..PullOptions::default()
        },
    )
    .unwrap();
    assert_eq!(yaml, from_file, "the same conversion as --from-file");

    let out = run(&[
        "schema",
        "pull",
        "--profile",
        "live",
        "sales",
        "--option-sets",
        "--only",
        "account",
        "-o",
        "sales.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let c =
        Catalog::parse(&std::fs::read_to_string(dir.path().join("sales.yaml")).unwrap()).unwrap();
    assert!(c.validate().is_empty());
    assert_eq!(
        options_of(&c, "account", "customertypecode"),
        [("Competitor".to_string(), 1), ("Customer".into(), 3)]
    );
    assert_eq!(
        options_of(&c, "account", "statecode"),
        [("Active".to_string(), 0), ("Inactive".into(), 1)]
    );
    assert_eq!(
        c.tables["account"].fields["statuscode"].ty,
        FieldType::Integer
    );

    // A refused token: exit 2, the message names the token endpoint, never the secret.
    let out = Coupler::new()
        .args(["schema", "pull", "--profile", "live", "sales"])
        .current_dir(dir.path())
        .env("PULL_TEST_SECRET", "wrong")
        .output();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("access token") && err.contains("400"), "{err}");
    assert!(!err.contains("wrong") && !err.contains("s3cret"), "{err}");
}

#[test]
fn plain_http_is_refused_for_remote_hosts() {
    let dir = project_with_profile(
        "http://example.com/api/data/v9.2",
        "https://login.microsoftonline.com/t/oauth2/v2.0/token",
    );
    let out = Coupler::new()
        .args(["schema", "pull", "--profile", "live", "sales"])
        .current_dir(dir.path())
        .env("PULL_TEST_SECRET", "s3cret")
        .output();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
}
