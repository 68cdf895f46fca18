//! `coupler check` on one fixture per diagnostic case (`tests/fixtures/check/*.map`).
//!
//! Each fixture runs through the real binary from the repository root, so the paths shown are
//! `tests/fixtures/check/NAME.map`. The human rendering is compared with an insta snapshot; the
//! JSON rendering is checked for the codes the fixture exists for, so a wording change only
//! moves snapshots. Accept new renderings with `INSTA_UPDATE=always cargo test --test
//! it check::` (or `cargo insta review`), then read them.

use crate::support::coupler::coupler;
use coupler::diagnostic::codes;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Declares one test per fixture and the table of every fixture with the codes it must produce.
macro_rules! fixtures {
    ($($(#[$attr:meta])* $name:ident => [$($code:literal),+ $(,)?],)*) => {
        /// Fixture name -> codes it must produce (it may produce others; the snapshot shows all).
        const FIXTURES: &[(&str, &[&str])] = &[$((stringify!($name), &[$($code),+])),*];

        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                check_fixture(stringify!($name), &[$($code),+]);
            }
        )*
    };
}

fixtures! {
    // E01: syntax and input
    unterminated_string => ["E0101"],
    syntax_equals_instead_of_arrow => ["E0101"],
    syntax_single_equals_in_where => ["E0101"],
    syntax_missing_close_brace => ["E0101"],
    syntax_missing_arrow_in_header => ["E0101"],
    syntax_unknown_clause => ["E0101"],
    invalid_utf8 => ["E0102"],
    binary_file => ["E0103"],
    nesting_too_deep => ["E0104"],
    invalid_duration => ["E0106"],
    number_out_of_range => ["E0106"],
    unknown_modifier => ["E0107"],
    unknown_policy_value => ["E0108"],
    unknown_policy_kind => ["E0108"],
    unknown_policy_conflict_value => ["E0108"],
    empty_file => ["W0109"],
    // E02: declarations
    duplicate_system => ["E0201"],
    duplicate_mapping => ["E0202"],
    unknown_kind => ["E0203"],
    schema_unreadable => ["E0204"],
    schema_invalid_yaml => ["E0205"],
    schema_invalid_field_type => ["E0205"],
    schema_inconsistent => ["E0205"],
    schema_wrong_kind => ["E0205"],
    duplicate_clause => ["E0206"],
    duplicate_clause_policy => ["E0206"],
    duplicate_setting => ["E0207"],
    company_not_dataverse => ["E0208"],
    company_column_missing => ["E0209"],
    company_column_type => ["E0210"],
    company_filtered => ["E0211"],
    company_written => ["E0212"],
    // E03: names
    unknown_field => ["E0301"],
    unknown_field_no_suggestion => ["E0301"],
    unknown_field_in_where => ["E0301"],
    unknown_field_in_couple_by => ["E0301"],
    unknown_table => ["E0302"],
    unknown_entity => ["E0302"],
    unknown_system => ["E0303"],
    unknown_system_in_where => ["E0303"],
    unknown_mapping_after => ["E0304"],
    unknown_mapping_via => ["E0304"],
    unknown_option_on_create => ["E0305"],
    unknown_option_in_options => ["E0305"],
    unknown_option_number => ["E0305"],
    unknown_function => ["E0306"],
    foreign_system => ["E0307"],
    not_an_option => ["E0308"],
    unknown_setting => ["E0309"],
    // E04: directions and targets
    arrow_against_mapping => ["E0401"],
    create_values_wrong_side => ["E0401"],
    bidirectional_options => ["E0402"],
    constant_target => ["E0403"],
    constant_target_one_way => ["E0403"],
    target_twice => ["E0404"],
    target_twice_on_create => ["E0404"],
    target_twice_split => ["E0404"],
    read_only_target => ["E0405"],
    read_only_target_flowfield => ["E0405"],
    no_field_in_direction => ["E0406"],
    same_system => ["E0407"],
    conflict_on_one_way => ["E0408"],
    condition_against_flow => ["E0409"],
    split_one_way => ["E0410"],
    watermark_none_on_target => ["E0411"],
    create_options_backward => ["E0412"],
    also_not_option => ["E0413"],
    // E05: lookups and modifiers
    via_wrong_tables => ["E0501"],
    via_wrong_tables_contact_company => ["E0501"],
    via_wrong_tables_options => ["E0501"],
    via_other_environment => ["E0501"],
    // Regression: sides are resolved before any mapping is checked, so order does not matter.
    via_wrong_tables_declared_later => ["E0501"],
    lookup_without_via => ["E0502"],
    lookup_constant_without_via => ["E0502"],
    via_on_plain_field => ["E0503"],
    modifier_needs_via => ["E0504"],
    conflicting_modifiers => ["E0505"],
    parent_modifier_conflicts => ["E0505", "E0504"],
    borrowed_couplings => ["E0506"],
    through_without_via => ["E0502", "E0520"],
    through_other_system => ["E0521"],
    through_type => ["E0522"],
    couple_via_wrong_tables => ["E0501", "E0304"],
    // E06: types
    function_type => ["E0601"],
    type_mismatch => ["E0602"],
    type_mismatch_decimal_to_integer => ["E0602"],
    type_mismatch_constant => ["E0602"],
    type_mismatch_watermark => ["E0602"],
    type_mismatch_setting => ["E0602"],
    type_mismatch_options_key => ["E0602"],
    bad_argument => ["E0603"],
    bad_argument_regex => ["E0603"],
    bad_argument_count => ["E0603"],
    may_truncate => ["W0604"],
    may_truncate_constant => ["W0604"],
    filter_type => ["E0605"],
    filter_type_ordered_null => ["E0605"],
    filter_type_unordered => ["E0605"],
    filter_type_option_boolean => ["E0605"],
    filter_type_bad_date => ["E0605"],
    filter_type_too_long => ["E0605"],
    couple_type => ["E0606"],
    split_length => ["E0607"],
    split_length_not_a_number => ["E0607"],
    value_set_unknown => ["E0608"],
    value_set_not_text => ["E0609"],
    value_set_nested => ["E0610"],
    blank_not_a_lookup => ["E0611"],
    blank_key_not_text => ["E0612"],
    // E07: dependencies
    cycle_customer_contact => ["E0701"],
    cycle_three_mappings => ["E0701"],
    cycle_two_independent => ["E0701"],
    cycle_self_after => ["E0701"],
    cycle_self_lookup => ["E0701"],
    // W08: advice
    no_conflict_policy => ["W0801"],
    also_without_create => ["W0802"],
    option_label_unmatched => ["W0803"],
}

/// Codes whose case cannot be a committed file; a test below generates the input instead.
const GENERATED: &[&str] = &[
    "E0105", "E0901", "W0903", "W0904", "W0905", "W0906", "W0907", "W0908",
];

const FIXTURE_DIR: &str = "tests/fixtures/check";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `coupler check ARGS` from the repository root, without colour.
fn coupler_check(args: &[&str]) -> Output {
    coupler(["check"])
        .args(args)
        .current_dir(repo_root())
        .output()
}

/// The diagnostics of `--format json`, one object per stdout line.
fn json_diagnostics(path: &str) -> Vec<serde_json::Value> {
    let out = coupler_check(&["--format", "json", path]);
    let stdout = String::from_utf8(out.stdout).expect("JSON output is UTF-8");
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn codes_of(diags: &[serde_json::Value]) -> BTreeSet<String> {
    diags
        .iter()
        .map(|d| d["code"].as_str().expect("`code` is a string").to_string())
        .collect()
}

fn check_fixture(name: &str, expected: &[&str]) {
    let path = format!("{FIXTURE_DIR}/{name}.map");
    assert!(
        repo_root().join(&path).is_file(),
        "fixture `{path}` is missing"
    );

    let human = coupler_check(&[&path]);
    let stderr = String::from_utf8(human.stderr).expect("human output is UTF-8");
    assert!(
        !stderr.contains('\u{1b}'),
        "NO_COLOR output has escape codes"
    );
    insta::assert_snapshot!(name, stderr);

    let diags = json_diagnostics(&path);
    let produced = codes_of(&diags);
    for code in expected {
        assert!(
            produced.contains(*code),
            "`{name}.map` should report {code}; it reported {produced:?}\n{stderr}"
        );
    }
    for d in &diags {
        assert_eq!(
            d["file"].as_str(),
            Some(path.as_str()),
            "`{name}.map`: a diagnostic points into another file: {d}"
        );
        let code = d["code"].as_str().unwrap_or_default();
        let registered = codes::find(code).unwrap_or_else(|| panic!("unregistered code {code}"));
        let severity = format!("{:?}", registered.severity).to_lowercase();
        assert_eq!(d["severity"].as_str(), Some(severity.as_str()), "{d}");
    }

    // Exit code 1 on errors, 0 when there are only warnings.
    let has_error = diags.iter().any(|d| d["severity"] == "error");
    assert_eq!(
        human.status.code(),
        Some(if has_error { 1 } else { 0 }),
        "`{name}.map`: exit code\n{stderr}"
    );
}

/// E0105: a file over the 64 MiB limit is refused before it is parsed.
#[test]
fn too_large() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("too_large.map");
    let mut text = b"# a generated mapping file over the size limit\n".to_vec();
    text.resize(65 * 1024 * 1024, b'#');
    std::fs::write(&path, &text).expect("write the large file");
    let shown = path.to_str().expect("UTF-8 temp path");

    let diags = json_diagnostics(shown);
    assert_eq!(codes_of(&diags), BTreeSet::from(["E0105".to_string()]));

    let human = coupler_check(&[shown]);
    assert_eq!(human.status.code(), Some(1));
    let stderr = String::from_utf8(human.stderr).expect("human output is UTF-8");
    insta::assert_snapshot!("too_large", stderr.replace(shown, "[TEMP]/too_large.map"));
}

/// E0901, W0903-W0908: with `--profile`, what a Business Central API endpoint cannot
/// serve, and what a profile's `publishes:` adds. The fixture needs a `coupler.yaml`, so it is
/// written to a temporary folder. The profiles name secrets in `${...}` that are not set:
/// `check` is static and must not need them.
#[test]
fn endpoint_api_gaps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let schemas = repo_root().join("schemas");
    let map = format!(
        r#"system bc    = business_central "{schemas}/business-central.yaml"
system sales = dataverse        "{schemas}/dynamics-365-sales.yaml"

settings {{
    prices = false
}}

mapping CURRENCY: bc.Currency -> sales.transactioncurrency {{
    where bc: "ISO Code" != ''
    couple by Code == isocurrencycode
    fields {{
        Code        -> isocurrencycode | truncate(5)
        Description -> currencyname
        "ISO Code"  -> currencysymbol
    }}
}}

mapping CUSTOMER: bc.Customer <- sales.account {{
    fields {{
        Name       <- name | truncate(100)
        "Fax No."  <- fax | truncate(30)
        "Shipping Agent Code" <- address1_shippingmethodcode via "SHIPPING AGENT"
    }}
}}

options "SHIPPING AGENT": bc."Shipping Agent".Code -> sales.account.address1_shippingmethodcode

mapping "CUSTOMER PRICE GROUP": bc."Customer Price Group" -> sales.pricelevel {{
    when prices
    fields {{
        Code -> name
    }}
}}

mapping OPP: bc.Opportunity <-> sales.opportunity {{
    on conflict: log
    fields {{
        Description   <-> name | truncate(100)
        "Date Closed" <-> actualclosedate
    }}
}}

mapping INVOICE: bc."Sales Invoice Header" -> sales.invoice {{
    fields {{
        "No." -> invoicenumber
    }}
}}

mapping ORDER: bc."Sales Header" -> sales.salesorder {{
    where bc: Status in ('Open', 'Released')
    fields {{
        "External Document No." -> name | truncate(35)
    }}
}}
"#,
        schemas = schemas.display()
    );
    std::fs::write(dir.path().join("api.map"), map).expect("map");
    let yaml = "profiles:\n  api:\n    systems:\n      bc: { kind: business_central, url: \"https://bc.example.com/${TENANT_NOT_SET}/api/v2.0\", auth: { tenant: \"${TENANT_NOT_SET}\", client_id: \"${ID_NOT_SET}\", client_secret: \"${SECRET_NOT_SET}\" } }\n      sales: { kind: dataverse, url: \"https://org.example.com/api/data/v9.2\" }\n    state: state/state.db\n  prices:\n    systems:\n      bc: { kind: business_central, url: \"https://bc.example.com/api/v2.0\", publishes: { Customer: { fields: { \"Shipping Agent Code\": shippingAgentCode } } } }\n      sales: { kind: embedded }\n    state: state/state.db\n    settings: { prices: true }\n  embedded:\n    systems:\n      bc: { kind: embedded }\n      sales: { kind: embedded }\n    state: state/state.db\n  published:\n    systems:\n      bc: { kind: business_central, url: \"https://bc.example.com/api/v2.0\", publishes: { Currency: { fields: { \"ISO Code\": isoCode } }, Customer: { fields: { \"Fax No.\": faxNumber, \"Shipping Agent Code\": shippingAgentCode } }, \"Shipping Agent\": { entity_set: shippingAgents, fields: { Code: code } } } }\n      sales: { kind: embedded }\n    state: state/state.db\n  unknown:\n    systems:\n      bc: { kind: business_central, url: \"https://bc.example.com/api/v2.0\", publishes: { Customer: { fields: { \"Fax Nr.\": faxNumber } } } }\n      sales: { kind: embedded }\n    state: state/state.db\n  swapped:\n    systems:\n      bc: { kind: embedded }\n      sales: { kind: business_central, url: \"https://bc.example.com/api/v2.0\" }\n    state: state/state.db\n";
    std::fs::write(dir.path().join("coupler.yaml"), yaml).expect("yaml");
    let check = |args: &[&str]| {
        coupler(["check", "api.map"])
            .args(args)
            .current_dir(dir.path())
            .output()
    };
    let codes = |out: &Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let d: serde_json::Value = serde_json::from_str(l).expect("JSON");
                format!("{} {}", d["code"].as_str().unwrap(), d["line"])
            })
            .collect()
    };
    // Without a profile, or with one that binds nothing to the API: no finding.
    assert_eq!(check(&[]).status.code(), Some(0));
    assert_eq!(check(&["--profile", "embedded"]).status.code(), Some(0));
    // The API profile: a field read in a filter cannot be left out (an error); lines of fields
    // the API lacks are left out (read, written); the option mapping on a table without an
    // entity set is left out, and so is a line that looks up through it. The price group
    // mapping is off, so its table does not count.
    let out = check(&["--profile", "api", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        codes(&out),
        [
            "E0901 9", "W0903 14", "W0903 21", "W0903 22", "W0904 26", "W0906 39", "W0907 43",
            "W0908 50"
        ]
    );
    // A profile whose settings switch the price groups on (their table is not in the API) and
    // whose endpoint publishes the shipping agent code but not the shipping agents: the line
    // is served, but it looks up through a mapping that is left out.
    let out = check(&["--profile", "prices", "--format", "json"]);
    assert_eq!(
        codes(&out),
        [
            "E0901 9", "W0903 14", "W0903 21", "W0905 22", "W0904 26", "W0904 28", "W0906 39",
            "W0907 43", "W0908 50"
        ]
    );
    // What the endpoint publishes (custom API pages) is served: nothing is left out, no error;
    // a read-only property stays read-only (the line stays one-way).
    let out = check(&["--profile", "published", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", codes(&out));
    assert_eq!(codes(&out), ["W0906 39", "W0907 43", "W0908 50"]);
    // A name the catalog does not have is refused, naming it.
    let out = check(&["--profile", "unknown"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("field `Customer`.`Fax Nr.`"), "{err}");
    // A system bound to an endpoint of another kind is refused, not checked against the wrong API.
    let out = check(&["--profile", "swapped"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("binds system `sales` to a `business_central` endpoint")
            && err.contains("declares `sales` as `dataverse`"),
        "{err}"
    );
    let human = check(&["--profile", "prices"]);
    assert_eq!(human.status.code(), Some(1));
    let stderr = String::from_utf8(human.stderr).expect("UTF-8");
    let shown = dir.path().display().to_string();
    insta::assert_snapshot!("endpoint_api_gaps", stderr.replace(&shown, "[TEMP]"));
}

/// Adding a code to the registry without a fixture that produces it fails here.
#[test]
fn every_code_has_a_fixture() {
    let covered: BTreeSet<&str> = FIXTURES
        .iter()
        .flat_map(|(_, codes)| codes.iter().copied())
        .chain(GENERATED.iter().copied())
        .collect();
    let missing: Vec<&str> = codes::ALL
        .iter()
        .map(|c| c.id)
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a fixture in {FIXTURE_DIR}: {missing:?}"
    );
    for id in &covered {
        assert!(
            codes::find(id).is_some(),
            "fixture table names unknown code {id}"
        );
    }
}

/// Every `*.map` in the fixture folder is in the table, so none is silently left unchecked.
#[test]
fn every_fixture_is_listed() {
    let listed: BTreeSet<&str> = FIXTURES.iter().map(|(name, _)| *name).collect();
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(repo_root().join(FIXTURE_DIR)).expect("fixture folder") {
        let path: PathBuf = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "map") {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if !listed.contains(stem) {
                unlisted.push(stem.to_string());
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "fixtures missing from FIXTURES: {unlisted:?}"
    );
}

/// `## CODE: title` sections of docs/errors.md.
fn error_doc_sections() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("docs/errors.md")).expect("docs/errors.md");
    let mut sections = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            sections.extend(current.take());
            current = Some((heading.to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections.extend(current);
    sections
}

#[test]
fn every_code_is_documented() {
    let sections = error_doc_sections();
    let headings: Vec<&str> = sections.iter().map(|(h, _)| h.as_str()).collect();
    for code in codes::ALL {
        let heading = format!("{}: {}", code.id, code.title);
        let Some((_, body)) = sections.iter().find(|(h, _)| *h == heading) else {
            panic!("docs/errors.md has no `## {heading}` section (headings: {headings:?})");
        };
        assert!(
            !body.contains("(explanation to be written)"),
            "`## {heading}` still has the placeholder"
        );
        let prose: String = body.split("```").step_by(2).collect::<Vec<_>>().join(" ");
        assert!(
            prose.split_whitespace().count() >= 25,
            "`## {heading}` needs a real explanation, not {} words",
            prose.split_whitespace().count()
        );
        // Encoding and size problems cannot be shown as mapping text.
        if !["E0102", "E0103", "E0105"].contains(&code.id) {
            assert!(
                body.contains("```coupler"),
                "`## {heading}` should show an example in a ```coupler block"
            );
        }
        let explained = codes::explanation(*code).expect("`coupler explain` finds the section");
        assert!(explained.starts_with(&format!("## {heading}")));
    }
}

#[test]
fn every_documented_code_is_registered() {
    let order: Vec<&str> = codes::ALL.iter().map(|c| c.id).collect();
    let mut documented = Vec::new();
    for (heading, _) in error_doc_sections() {
        let id = heading.split(':').next().unwrap_or_default();
        let code =
            codes::find(id).unwrap_or_else(|| panic!("`## {heading}` is not a registered code"));
        assert_eq!(
            heading,
            format!("{}: {}", code.id, code.title),
            "heading differs from the registry's title"
        );
        documented.push(code.id);
    }
    assert_eq!(
        documented, order,
        "docs/errors.md lists each code once, in registry order"
    );
}
