//! End-to-end tests of the synchronization runtime: the real `coupler` binary on two embedded
//! systems seeded from small JSON folders in a temp project. Each test proves one rule of the
//! synchronization table of Microsoft's "Integrating with Dynamics 365 Sales" or one engine
//! behaviour, and asserts concrete records.

use crate::support::sync as sync_support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use sync_support::{text, Counts, Project, INTEGRATION};

// ---------------------------------------------------------------------------------------------
// Small mapping files for the engine behaviours (the `system` lines are added by the helper).

/// Customers one way, created when missing.
const CUSTOMERS_ONE_WAY: &str = r#"
mapping CUST: bc.Customer -> sales.account {
    on missing: create
    on delete: ignore

    fields {
        Name        -> name
        "Phone No." -> telephone1
    }
}
"#;

/// Customers both ways, with the test's policy lines.
fn customers_both_ways(policies: &str) -> String {
    format!(
        r#"
mapping CUST: bc.Customer <-> sales.account {{
{policies}

    fields {{
        Name        <-> name
        "Phone No." <-> telephone1
    }}
}}
"#
    )
}

fn customer(no: &str, name: &str) -> Value {
    json!({ "No.": no, "Name": name })
}

fn bc_customers(names: &[(&str, &str)]) -> Value {
    json!({ "Customer": names.iter().map(|(no, n)| customer(no, n)).collect::<Vec<_>>() })
}

/// The values of a text field over all records of a table, sorted; a blank is `<null>`.
fn names(p: &Project, target: &str, field: &str) -> Vec<String> {
    let mut v: Vec<String> = p
        .show(target)
        .iter()
        .map(|r| r[field].as_str().unwrap_or("<null>").to_string())
        .collect();
    v.sort();
    v
}

fn system_id(p: &Project, no: &str) -> String {
    text(&p.find("bc.Customer", "No.", no), "SystemId").to_string()
}

fn account_id(p: &Project, name: &str) -> String {
    text(&p.find("sales.account", "name", name), "accountid").to_string()
}

fn zero() -> Counts {
    Counts::default()
}

// ---------------------------------------------------------------------------------------------
// Microsoft's synchronization rules (Integrating with Dynamics 365 Sales), on the standard mapping set.

#[test]
fn salespeople_come_only_from_enabled_licensed_non_integration_users() {
    let p = Project::standard(
        json!({}),
        json!({ "systemuser": [
            { "fullname": "Ann Able", "internalemailaddress": "ann@contoso.com",
              "isdisabled": false, "islicensed": true, "isintegrationuser": false },
            { "fullname": "Dan Disabled", "internalemailaddress": "dan@contoso.com",
              "isdisabled": true, "islicensed": true, "isintegrationuser": false },
            { "fullname": "Uma Unlicensed", "internalemailaddress": "uma@contoso.com",
              "isdisabled": false, "islicensed": false, "isintegrationuser": false },
            { "fullname": "Ivan Integration", "internalemailaddress": "bci@contoso.com",
              "isdisabled": false, "islicensed": true, "isintegrationuser": true }
        ]}),
    );
    let o = p.run_ok(&["--full"]);
    assert_eq!(o.counts("SALESPEOPLE", "<-").inserted, 1);
    let people = p.show("bc.Salesperson/Purchaser");
    assert_eq!(people.len(), 1, "{people:#?}");
    assert_eq!(people[0]["Name"], "Ann Able");
    assert_eq!(people[0]["E-Mail"], "ann@contoso.com");
}

#[test]
fn salespeople_synchronize_before_every_mapping_that_names_an_owner() {
    let p = Project::standard(json!({}), json!({}));
    let o = p.run_ok(&[]);
    let order = o.mapping_order();
    let at = |m: &str| order.iter().position(|x| x == m).unwrap_or(usize::MAX);
    for user in [
        "CUSTOMER",
        "VENDOR",
        "CONTACT",
        "OPPORTUNITY",
        "POSTEDSALESINV-INV",
    ] {
        assert!(at("SALESPEOPLE") < at(user), "{user} ran first: {order:?}");
    }
}

#[test]
fn customers_come_only_from_active_accounts_of_relationship_type_customer() {
    let p = Project::standard(
        json!({}),
        json!({ "account": [
            { "name": "Active Customer", "customertypecode": "Customer", "statecode": "Active" },
            { "name": "Active Vendor", "customertypecode": "Vendor", "statecode": "Active" },
            { "name": "Active Prospect", "customertypecode": "Prospect", "statecode": "Active" },
            { "name": "Inactive Customer", "customertypecode": "Customer", "statecode": "Inactive" }
        ]}),
    );
    let o = p.run_ok(&["--full"]);
    assert_eq!(o.counts("CUSTOMER", "<-").inserted, 1);
    assert_eq!(names(&p, "bc.Customer", "Name"), ["Active Customer"]);
}

/// A customer whose salesperson (ZK) has no Sales user yet.
fn customer_of_an_uncoupled_salesperson() -> Project {
    Project::standard(
        json!({
            "Salesperson/Purchaser": [{ "Code": "ZK", "Name": "Zoe King", "E-Mail": "zoe@contoso.com" }],
            "Customer": [{ "No.": "C1", "Name": "Alpha", "Salesperson Code": "ZK" }]
        }),
        json!({}),
    )
}

#[test]
fn a_customer_whose_salesperson_is_not_coupled_to_a_user_fails() {
    let p = customer_of_an_uncoupled_salesperson();
    let o = p.run(&["--full"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(o.counts("CUSTOMER", "->").failed, 1);
    assert!(p.show("sales.account").is_empty());
    let errors = p.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`ZK` has no coupled record in `SALESPEOPLE`"),
        "{message}"
    );
    // The kind says why, for tools that read `errors --format json`.
    assert_eq!(errors[0]["kind"], "lookup", "{errors:#?}");
}

/// Zoe King gets a licensed Sales user (an administrator's change: the fields are read-only).
fn give_zoe_a_user(p: &Project, id: &str) {
    let user = json!({ "systemuserid": id, "fullname": "Zoe King",
        "internalemailaddress": "zoe@contoso.com", "isdisabled": false, "islicensed": true,
        "isintegrationuser": false });
    p.system("sales")
        .put_as(
            "systemuser",
            user.as_object().expect("object").clone(),
            "admin",
            true,
        )
        .expect("user written");
}

#[test]
fn a_customer_that_failed_in_the_initial_run_is_created_once_its_salesperson_is_coupled() {
    let zed = "c0000000-0000-4000-8000-00000000000d";
    let p = customer_of_an_uncoupled_salesperson();
    assert_eq!(p.run(&["--full"]).code, 1);
    give_zoe_a_user(&p, zed);
    // An ordinary run: the failed record is retried as it was attempted, i.e. created, though
    // the mapping says `on missing: skip`.
    let o = p.run(&[]);
    assert_eq!(o.code, 0, "{:#}", o.report);
    assert_eq!(o.counts("SALESPEOPLE", "<-").coupled, 1);
    assert_eq!(
        o.counts("CUSTOMER", "->").inserted,
        1,
        "{:#}",
        Value::from(o.actions.clone())
    );
    assert_eq!(p.find("sales.account", "name", "Alpha")["ownerid"], zed);
    assert!(p.errors().is_empty(), "{:#?}", p.errors());
}

#[test]
fn a_plain_run_skips_an_uncoupled_record_even_when_its_lookup_fails() {
    let p = customer_of_an_uncoupled_salesperson();
    // No --full: CUSTOMER (`on missing: skip`) creates nothing, whatever its lookups say.
    let o = p.run(&[]);
    assert_eq!(o.code, 0, "{:#}", Value::from(o.actions.clone()));
    assert_eq!(
        o.counts("CUSTOMER", "->"),
        Counts {
            skipped: 1,
            ..zero()
        }
    );
    assert!(p.errors().is_empty(), "{:#?}", p.errors());
    give_zoe_a_user(&p, "c0000000-0000-4000-8000-00000000000d");
    let o = p.run_ok(&[]);
    assert_eq!(o.counts("CUSTOMER", "->").inserted, 0, "{:#}", o.report);
    assert!(p.show("sales.account").is_empty());
}

#[test]
fn contacts_synchronize_only_when_attached_to_a_company() {
    let account = "c0000000-0000-4000-8000-0000000000a1";
    let p = Project::standard(
        json!({ "Contact": [
            { "No.": "CT1", "Type": "Company", "Name": "Alpha Company" },
            { "No.": "CT2", "Type": "Person", "Company No.": "CT1", "First Name": "Ann", "Surname": "Attached" },
            { "No.": "CT3", "Type": "Person", "First Name": "Sam", "Surname": "Solo" }
        ],
        "Customer": [{ "No.": "C1", "Name": "Alpha Company" }],
        "Contact Business Relation": [
            { "Contact No.": "CT1", "Business Relation Code": "CUST", "Link to Table": "Customer", "No.": "C1" }
        ]}),
        json!({
            "account": [{ "accountid": account, "name": "Beta", "customertypecode": "Customer" }],
            "contact": [
                { "firstname": "Bea", "lastname": "Parented", "parentcustomerid": account,
                  "parentcustomeridtype": "account" },
                { "firstname": "Fay", "lastname": "Free" }
            ]
        }),
    );
    let o = p.run_ok(&["--full"]);
    assert_eq!(o.counts("CONTACT", "->").inserted, 1, "{:#}", o.report);
    assert_eq!(o.counts("CONTACT", "<-").inserted, 1, "{:#}", o.report);
    // Sales gets the person of a company, not the free person nor the company itself.
    assert_eq!(
        names(&p, "sales.contact", "lastname"),
        ["Attached", "Free", "Parented"]
    );
    // Business Central gets the contact that has a parent account, not the free one, under the
    // company contact Business Central gave the new customer Beta (CustCont-Update). Company
    // contacts have no surname: `<null>` (CT1, and Beta's).
    assert_eq!(
        names(&p, "bc.Contact", "Surname"),
        ["<null>", "<null>", "Attached", "Parented", "Solo"]
    );
    let beta = p.find("bc.Contact", "Name", "Beta");
    assert_eq!(
        p.find("bc.Contact", "Surname", "Parented")["Company No."],
        beta["No."]
    );
}

#[test]
/// The seed document's rule: only currencies with a standard ISO 4217 code are coupled and
/// synchronized (`where bc: Code is iso4217` in CURRENCY). The others are skipped, counted and
/// reported with the reason; nothing fails. Coupled by code ignoring case.
fn currencies_are_coupled_by_iso_code_and_only_standard_codes_synchronize() {
    let usd = "c0000000-0000-4000-8000-0000000000c1";
    let p = Project::standard(
        json!({ "Currency": [
            { "Code": "EUR", "ISO Code": "EUR", "Description": "Euro" },
            { "Code": "USD", "ISO Code": "USD", "Description": "US Dollar" },
            { "Code": "GOLD", "ISO Code": "", "Description": "Gold ounces" },
            { "Code": "BTC", "ISO Code": "", "Description": "Bitcoin" }
        ]}),
        json!({ "transactioncurrency": [
            { "transactioncurrencyid": usd, "isocurrencycode": "USD", "currencyname": "Dollar" }
        ]}),
    );
    let o = p.run_ok(&["--full"]);
    let c = o.counts("CURRENCY", "->");
    assert_eq!(
        (c.coupled, c.inserted, c.skipped, c.failed),
        (1, 1, 2, 0),
        "{c:?}"
    );
    assert_eq!(
        names(&p, "sales.transactioncurrency", "isocurrencycode"),
        ["EUR", "USD"]
    );
    let mut reasons: Vec<String> = o
        .actions_of("CURRENCY")
        .iter()
        .filter(|a| a["kind"] == "skip")
        .map(|a| a["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "`Code` 'BTC' is not one of the ISO 4217 currency codes (`Code is iso4217`)",
            "`Code` 'GOLD' is not one of the ISO 4217 currency codes (`Code is iso4217`)",
        ]
    );
    // The existing USD was coupled, not duplicated, and now carries Business Central's name.
    let dollar = p.find("sales.transactioncurrency", "isocurrencycode", "USD");
    assert_eq!(dollar["transactioncurrencyid"], usd);
    assert_eq!(dollar["currencyname"], "US Dollar");
    // Nothing changed since: a second run writes nothing and fails nothing.
    let again = p.run_ok(&[]);
    let c = again.counts("CURRENCY", "->");
    assert_eq!((c.writes(), c.failed), (0, 0), "{c:?}");
}

/// CURRENCY without its ISO rule: Dataverse refuses a currency whose ISO code it does not know,
/// and the currency is counted as failed with Dataverse's message.
const CURRENCY_WITHOUT_ISO_RULE: &str = r#"
mapping CURRENCY: bc.Currency -> sales.transactioncurrency {
    couple by Code == isocurrencycode ignoring case
    on missing: create
    on delete: ignore

    fields {
        Code        -> isocurrencycode | truncate(5)
        Description -> currencyname
    }
}
"#;

#[test]
fn dataverse_refuses_a_currency_whose_iso_code_it_does_not_know() {
    let p = Project::new(
        CURRENCY_WITHOUT_ISO_RULE,
        json!({ "Currency": [
            { "Code": "EUR", "Description": "Euro" },
            { "Code": "BTC", "Description": "Bitcoin" }
        ]}),
        json!({}),
    );
    let o = p.run(&[]);
    let c = o.counts("CURRENCY", "->");
    assert_eq!((c.inserted, c.failed), (1, 1), "{c:?}");
    // USD: the organization's base currency, in Sales from the start as in every environment.
    assert_eq!(
        names(&p, "sales.transactioncurrency", "isocurrencycode"),
        ["EUR", "USD"]
    );
    let errors = p.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'BTC' is not a valid ISO currency code"),
        "{message}"
    );
}

#[test]
/// A code written in lower case in one system is the same currency as the upper-case code in
/// the other (`couple by Code == isocurrencycode ignoring case`): coupled, not duplicated.
fn currencies_couple_by_code_ignoring_case() {
    let usd = "c0000000-0000-4000-8000-0000000000c1";
    let p = Project::standard(
        json!({ "Currency": [{ "Code": "usd", "Description": "US Dollar" }] }),
        json!({ "transactioncurrency": [
            { "transactioncurrencyid": usd, "isocurrencycode": "USD", "currencyname": "Dollar" }
        ]}),
    );
    let o = p.run_ok(&["--full"]);
    let c = o.counts("CURRENCY", "->");
    assert_eq!((c.coupled, c.inserted, c.failed), (1, 0, 0), "{c:?}");
    assert_eq!(p.show("sales.transactioncurrency").len(), 1);
}

fn units_of_measure() -> Project {
    Project::standard(
        json!({ "Unit of Measure": [
            { "Code": "PCS", "Description": "Piece" },
            { "Code": "HOUR", "Description": "Hour" }
        ]}),
        json!({}),
    )
}

#[test]
fn each_unit_of_measure_becomes_one_unit_group() {
    let p = units_of_measure();
    assert_eq!(
        p.run_ok(&["--full"])
            .counts("UNIT OF MEASURE", "->")
            .inserted,
        2
    );
    assert_eq!(
        names(&p, "sales.uomschedule", "baseuomname"),
        ["HOUR", "PCS"]
    );
    assert_eq!(names(&p, "sales.uomschedule", "name"), ["HOUR", "PCS"]);
    p.run_ok(&["--full"]);
    assert_eq!(p.show("sales.uomschedule").len(), 2);
}

#[test]
fn a_unit_group_holds_exactly_one_unit_its_unit_of_measure() {
    let p = units_of_measure();
    p.run_ok(&["--full"]);
    let units = p.show("sales.uom");
    for group in p.show("sales.uomschedule") {
        let mine: Vec<_> = units
            .iter()
            .filter(|u| u["uomscheduleid"] == group["uomscheduleid"])
            .collect();
        assert_eq!(mine.len(), 1, "unit group {group:#?} has units {mine:#?}");
        assert_eq!(mine[0]["name"], group["baseuomname"]);
        assert_eq!(mine[0]["quantity"], 1, "{:#?}", mine[0]);
    }
    assert_eq!(units.len(), 2, "{units:#?}");
}

#[test]
fn items_become_products_of_type_sales_inventory() {
    let p = Project::standard(
        json!({ "Item": [
            { "No.": "1000", "Description": "Bicycle", "Unit Price": 100, "Unit Cost": 60, "Blocked": false },
            { "No.": "2000", "Description": "Blocked bicycle", "Blocked": true }
        ]}),
        json!({}),
    );
    p.run_ok(&["--full"]);
    let products = p.show("sales.product");
    assert_eq!(products.len(), 1, "{products:#?}");
    assert_eq!(products[0]["productnumber"], "1000");
    assert_eq!(products[0]["producttypecode"], "Sales Inventory");
    assert_eq!(products[0]["price"], 100);
    assert_eq!(products[0]["standardcost"], 60);
}

#[test]
#[ignore = "rule not implemented: no price list is created in Sales for synchronized items; see report"]
fn an_item_gets_a_price_list_line_in_sales() {
    let p = Project::standard(
        json!({ "Item": [
            { "No.": "1000", "Description": "Bicycle", "Unit Price": 100, "Blocked": false }
        ]}),
        json!({}),
    );
    p.run_ok(&["--full"]);
    let product = p.find("sales.product", "productnumber", "1000");
    let lines = p.show("sales.productpricelevel");
    let line = lines
        .iter()
        .find(|l| l["productid"] == product["productid"])
        .unwrap_or_else(|| panic!("no price list line for the item: {lines:#?}"));
    assert_eq!(line["amount"], 100);
    assert_ne!(line["pricelevelid"], Value::Null);
}

#[test]
fn resources_become_products_of_type_services() {
    let p = Project::standard(
        json!({ "Resource": [
            { "No.": "R0010", "Name": "Consulting", "Unit Price": 80, "Blocked": false }
        ]}),
        json!({ "product": [
            { "productnumber": "P-100", "name": "Desk Lamp", "producttypecode": "Sales Inventory",
              "statecode": "Active" }
        ]}),
    );
    p.run_ok(&["--full"]);
    let product = p.find("sales.product", "productnumber", "R0010");
    assert_eq!(product["producttypecode"], "Services");
    assert_eq!(product["name"], "Consulting");
    assert_eq!(product["price"], 80);
    // A Sales Inventory product is an item, never a resource.
    assert_eq!(names(&p, "bc.Resource", "Name"), ["Consulting"]);
    assert_eq!(names(&p, "bc.Item", "Description"), ["Desk Lamp"]);
}

/// Business Central writes 0 for a negative price or quantity on hand (CRM Synch. Helper
/// UpdateCRMProductPriceIfNegative / UpdateCRMProductQuantityOnHandIfNegative): Sales refuses
/// negative prices. Items and resources (their capacity) alike; positive values pass as they are.
#[test]
fn negative_prices_and_capacity_reach_sales_as_zero() {
    let p = Project::standard(
        json!({
            "Item": [
                { "No.": "1000", "Description": "Credit note item", "Unit Price": -15, "Blocked": false },
                { "No.": "1001", "Description": "Bicycle", "Unit Price": 400, "Blocked": false }
            ],
            "Resource": [
                { "No.": "R0010", "Name": "Consulting", "Unit Price": -80, "Capacity": -2,
                  "Blocked": false },
                { "No.": "R0020", "Name": "Training", "Unit Price": 90, "Capacity": 12,
                  "Blocked": false }
            ]
        }),
        json!({}),
    );
    let o = p.run_ok(&["--full"]);
    assert_eq!(o.total().failed, 0, "{:#}", o.report);
    let product = |no: &str| p.find("sales.product", "productnumber", no);
    assert_eq!(product("1000")["price"], json!(0));
    assert_eq!(product("1001")["price"], json!(400));
    assert_eq!(
        (
            product("R0010")["price"].clone(),
            product("R0010")["quantityonhand"].clone()
        ),
        (json!(0), json!(0))
    );
    assert_eq!(
        (
            product("R0020")["price"].clone(),
            product("R0020")["quantityonhand"].clone()
        ),
        (json!(90), json!(12))
    );
    assert_eq!(p.run_ok(&[]).total().writes(), 0);
}

/// Payment terms codes, one with a Sales option ('NET 30' is "Net 30") and one without.
fn payment_terms_seed() -> Value {
    json!({
        "Payment Terms": [{ "Code": "NET 30" }, { "Code": "14 DAYS" }],
        "Customer": [
            { "No.": "C1", "Name": "Alpha", "Payment Terms Code": "NET 30" },
            { "No.": "C2", "Name": "Beta", "Payment Terms Code": "14 DAYS" }
        ]
    })
}

/// `create missing` (the standard set, as Business Central's Int. Option Synch. Invoke does):
/// a code with no option becomes an option value labelled with the code, in the account's set and
/// in the order's and invoice's; the account gets it in the same run; the next run adds nothing.
#[test]
fn a_payment_terms_code_without_a_sales_option_becomes_a_new_option_value() {
    let p = Project::standard(payment_terms_seed(), json!({}));
    let o = p.run_ok(&["--full"]);
    let terms = o.counts("PAYMENT TERMS", "->");
    assert_eq!(
        (terms.coupled, terms.inserted, terms.skipped, terms.failed),
        (1, 1, 0, 0),
        "{terms:?}"
    );
    let sales = p.system("sales");
    let new = vec![("14 DAYS".to_string(), 100_000_000)];
    assert_eq!(
        sales.added_option_values("account", "paymenttermscode"),
        new
    );
    assert_eq!(
        sales.added_option_values("salesorder", "paymenttermscode"),
        new
    );
    assert_eq!(
        sales.added_option_values("invoice", "paymenttermscode"),
        new
    );
    assert_eq!(
        p.find("sales.account", "name", "Alpha")["paymenttermscode"],
        "Net 30"
    );
    assert_eq!(
        p.find("sales.account", "name", "Beta")["paymenttermscode"],
        "14 DAYS"
    );

    let again = p.run_ok(&[]);
    let terms = again.counts("PAYMENT TERMS", "->");
    assert_eq!(
        (terms.inserted, terms.failed, terms.coupled),
        (0, 0, 0),
        "{terms:?}"
    );
    assert_eq!(again.total().writes(), 0, "{:#}", again.report);
    assert_eq!(
        sales
            .added_option_values("account", "paymenttermscode")
            .len(),
        1
    );
}

/// Without `create missing` a code with no option is skipped, counted with its reason, and the
/// option stays blank (what Business Central's option mapping does with no option to match).
#[test]
fn a_payment_terms_code_without_a_sales_option_leaves_the_option_blank_without_create_missing() {
    let p = Project::new(
        r#"
options "PAYMENT TERMS": bc."Payment Terms".Code -> sales.account.paymenttermscode

mapping CUST: bc.Customer -> sales.account {
    on missing: create
    fields {
        Name                 -> name
        "Payment Terms Code" -> paymenttermscode via "PAYMENT TERMS"
    }
}
"#,
        payment_terms_seed(),
        json!({}),
    );
    let o = p.run_ok(&["--full"]);
    let terms = o.counts("PAYMENT TERMS", "->");
    assert_eq!(
        (terms.coupled, terms.skipped, terms.inserted),
        (1, 1, 0),
        "{terms:?}"
    );
    let skip = o.actions_of_kind("skip");
    assert!(
        skip.iter()
            .any(|a| a["reason"].as_str().is_some_and(|r| r.contains("14 DAYS"))),
        "{skip:#?}"
    );
    assert!(p
        .system("sales")
        .added_option_values("account", "paymenttermscode")
        .is_empty());
    assert_eq!(
        p.find("sales.account", "name", "Alpha")["paymenttermscode"],
        "Net 30"
    );
    assert_eq!(
        p.find("sales.account", "name", "Beta")["paymenttermscode"],
        Value::Null
    );
}

/// An `also` set that already holds the new value under another label refuses it: the failure
/// is counted and recorded with Dataverse's reason, never silent; the account still gets its value.
#[test]
fn an_option_value_an_also_set_refuses_is_a_reported_failure() {
    let p = Project::standard(payment_terms_seed(), json!({}));
    p.load_systems();
    p.system("sales")
        .insert_option(
            "salesorder",
            "paymenttermscode",
            "Net 90",
            Some(100_000_000),
        )
        .expect("insert");
    let o = p.run(&["--full"]);
    let terms = o.counts("PAYMENT TERMS", "->");
    assert_eq!((terms.inserted, terms.failed), (1, 1), "{terms:?}");
    let errors = p.errors();
    assert!(
        errors.iter().any(|e| {
            let m = e["message"].as_str().unwrap_or_default();
            m.contains("14 DAYS")
                && m.contains("salesorder.paymenttermscode")
                && m.contains("value 100000000")
        }),
        "{errors:#?}"
    );
    assert_eq!(
        p.find("sales.account", "name", "Beta")["paymenttermscode"],
        "14 DAYS"
    );
}

#[test]
fn sales_prices_of_other_sales_types_are_not_synchronized() {
    // Every key field has a value: see the test below for blank key fields.
    let price = |sales_type: &str, code: &str, amount: u32| {
        json!({ "Item No.": "1000", "Sales Type": sales_type, "Sales Code": code,
                "Starting Date": "2024-01-01", "Currency Code": "EUR", "Variant Code": "STD",
                "Unit of Measure Code": "PCS", "Minimum Quantity": 0, "Unit Price": amount })
    };
    let p = Project::standard(
        json!({
            "Currency": [{ "Code": "EUR", "ISO Code": "EUR", "Description": "Euro" }],
            "Customer Price Group": [{ "Code": "RETAIL" }],
            "Item": [{ "No.": "1000", "Description": "Bicycle", "Blocked": false }],
            "Sales Price": [
                price("Customer Price Group", "RETAIL", 10),
                price("Customer", "C10000", 20),
                price("Campaign", "SPRING", 30)
            ]
        }),
        json!({}),
    );
    p.run_ok(&["--full"]);
    let lines = p.show("sales.productpricelevel");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let group = p.find("sales.pricelevel", "name", "RETAIL");
    let product = p.find("sales.product", "productnumber", "1000");
    assert_eq!(lines[0]["amount"], 10);
    assert_eq!(lines[0]["pricelevelid"], group["pricelevelid"]);
    assert_eq!(lines[0]["productid"], product["productid"]);
}

#[test]
fn sales_prices_synchronize_only_for_customer_price_groups_with_a_sales_code() {
    // Realistic prices: local currency (blank), no variant, no unit, and a blank sales code.
    let price = |sales_type: &str, code: &str, amount: u32| {
        json!({ "Item No.": "1000", "Sales Type": sales_type, "Sales Code": code,
                "Starting Date": "2024-01-01", "Currency Code": "", "Variant Code": "",
                "Unit of Measure Code": "", "Minimum Quantity": 0, "Unit Price": amount })
    };
    let p = Project::standard(
        json!({
            "Customer Price Group": [{ "Code": "RETAIL" }],
            "Item": [{ "No.": "1000", "Description": "Bicycle", "Blocked": false }],
            "Sales Price": [
                price("Customer Price Group", "RETAIL", 10),
                price("Customer Price Group", "", 15),
                price("All Customers", "", 30)
            ]
        }),
        json!({}),
    );
    p.run_ok(&["--full"]);
    let lines = p.show("sales.productpricelevel");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["amount"], 10);
}

/// A salesperson coupled by e-mail to a licensed user.
fn salesperson_and_user() -> (Value, Value) {
    (
        json!({ "Code": "AH", "Name": "Ann Howard", "E-Mail": "Ann.Howard@Contoso.com" }),
        json!({ "systemuserid": "c0000000-0000-4000-8000-00000000000a", "fullname": "Ann Howard",
                "internalemailaddress": "ann.howard@contoso.com", "isdisabled": false,
                "islicensed": true, "isintegrationuser": false }),
    )
}

#[test]
fn the_salesperson_code_decides_the_owner_in_sales() {
    let (salesperson, user) = salesperson_and_user();
    let p = Project::standard(
        json!({
            "Salesperson/Purchaser": [salesperson],
            "Customer": [
                { "No.": "C1", "Name": "Owned", "Salesperson Code": "AH" },
                { "No.": "C2", "Name": "Unowned" }
            ],
            "Opportunity": [
                { "No.": "OP1", "Description": "Big deal", "Salesperson Code": "AH", "Status": "In Progress" }
            ]
        }),
        json!({ "systemuser": [user.clone()] }),
    );
    let o = p.run_ok(&["--full"]);
    // The salesperson is coupled to the user (same e-mail, other case), not duplicated.
    assert_eq!(o.counts("SALESPEOPLE", "<-").coupled, 1);
    assert_eq!(p.show("bc.Salesperson/Purchaser").len(), 1);
    let owned = p.find("sales.account", "name", "Owned");
    assert_eq!(owned["ownerid"], user["systemuserid"]);
    assert_eq!(owned["owneridtype"], "systemuser");
    assert_eq!(
        p.find("sales.account", "name", "Unowned")["ownerid"],
        Value::Null
    );
    let deal = p.find("sales.opportunity", "name", "Big deal");
    assert_eq!(deal["ownerid"], user["systemuserid"]);
}

#[test]
fn invoices_synchronize_after_everything_they_refer_to_in_one_run() {
    let (salesperson, user) = salesperson_and_user();
    let p = Project::standard(
        json!({
            "Salesperson/Purchaser": [salesperson],
            "Currency": [{ "Code": "EUR", "ISO Code": "EUR", "Description": "Euro" }],
            "Customer": [{ "No.": "C1", "Name": "Alpha", "Salesperson Code": "AH", "Currency Code": "EUR" }],
            "Sales Invoice Header": [
                { "No.": "INV1", "Sell-to Customer No.": "C1", "Salesperson Code": "AH",
                  "Currency Code": "EUR", "Amount": 200, "Amount Including VAT": 250 }
            ],
            "Sales Invoice Line": [
                { "Document No.": "INV1", "Line No.": 10000, "Quantity": 2, "Unit Price": 100, "Amount": 200 }
            ]
        }),
        json!({ "systemuser": [user.clone()] }),
    );
    let o = p.run_ok(&["--full"]);
    assert_eq!(o.total().failed, 0);
    let order = o.mapping_order();
    let at = |m: &str| order.iter().position(|x| x == m).unwrap_or(usize::MAX);
    for dependency in ["SALESPEOPLE", "CURRENCY", "CUSTOMER"] {
        assert!(
            at(dependency) < at("POSTEDSALESINV-INV"),
            "{dependency} ran after the invoices: {order:?}"
        );
    }
    assert!(
        at("POSTEDSALESINV-INV") < at("POSTEDSALESLINE-INV"),
        "{order:?}"
    );
    let invoice = p.find("sales.invoice", "invoicenumber", "INV1");
    assert_eq!(invoice["customerid"], account_id(&p, "Alpha"));
    assert_eq!(invoice["customeridtype"], "account");
    assert_eq!(invoice["ownerid"], user["systemuserid"]);
    assert_eq!(
        invoice["transactioncurrencyid"],
        p.find("sales.transactioncurrency", "isocurrencycode", "EUR")["transactioncurrencyid"]
    );
    assert_eq!(invoice["totalamount"], 250);
    let lines = p.show("sales.invoicedetail");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["invoiceid"], invoice["invoiceid"]);
    assert_eq!(lines[0]["quantity"], 2);
}

// ---------------------------------------------------------------------------------------------
// Loop prevention and incremental runs.

#[test]
fn changes_written_as_the_integration_user_are_never_synchronized_back() {
    let p = Project::new(
        &customers_both_ways("    on missing: create\n    on conflict: log"),
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    p.run_ok(&[]);
    let account = account_id(&p, "Alpha");
    p.put_as(
        "sales.account",
        json!({ "accountid": account, "name": "Written by the integration" }),
        INTEGRATION,
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.total(), zero(), "{:#}", o.report);
    assert!(o.actions.is_empty(), "{:#?}", o.actions);
    assert_eq!(p.find("bc.Customer", "No.", "C1")["Name"], "Alpha");
}

/// Business Central's `IsModifiedByFilterNeeded`: a one-way mapping has no way back that could
/// loop, so what the integration user changed (another mapping, server logic) is read.
#[test]
fn a_one_way_mapping_reads_what_the_integration_user_changed() {
    let p = Project::new(
        r#"
mapping CUST: bc.Customer <- sales.account {
    on missing: create
    on delete: ignore

    fields {
        "No." <- accountnumber
        Name  <- name
    }
}
"#,
        json!({}),
        json!({ "account": [{ "name": "Alpha", "accountnumber": "A1" }] }),
    );
    p.run_ok(&[]);
    assert_eq!(p.find("bc.Customer", "No.", "A1")["Name"], "Alpha");
    let account = account_id(&p, "Alpha");
    p.put_as(
        "sales.account",
        json!({ "accountid": account, "name": "Renamed by another mapping" }),
        INTEGRATION,
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.counts("CUST", "<-").modified, 1, "{:#}", o.report);
    assert_eq!(
        p.find("bc.Customer", "No.", "A1")["Name"],
        "Renamed by another mapping"
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.total(), zero(), "{:#}", o.report);
}

/// A bidirectional mapping with a line that flows only out of Sales reads what the integration
/// user changed there (a value Sales may change because of what the integration wrote); the
/// other direction, whose fields all flow back, still leaves those changes out.
#[test]
fn a_bidirectional_mapping_with_a_one_way_line_reads_the_integration_users_changes_on_that_side() {
    let p = Project::new(
        r#"
mapping CUST: bc.Customer <-> sales.account {
    on missing: create
    on conflict: log
    on delete: ignore

    fields {
        Name        <-> name
        "Phone No." <-  telephone1
    }
}
"#,
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    p.run_ok(&[]);
    let account = account_id(&p, "Alpha");
    p.put_as(
        "sales.account",
        json!({ "accountid": account, "telephone1": "555-0199" }),
        INTEGRATION,
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.counts("CUST", "<-").modified, 1, "{:#}", o.report);
    assert_eq!(p.find("bc.Customer", "No.", "C1")["Phone No."], "555-0199");
    // Business Central's side has no one-way line: a change the integration user made there
    // is left out, and nothing bounces.
    p.put_as(
        "bc.Customer",
        json!({ "No.": "C1", "Name": "Written by the integration" }),
        INTEGRATION,
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.total(), zero(), "{:#}", o.report);
    assert_eq!(
        p.find("sales.account", "accountid", &account)["name"],
        "Alpha"
    );
}

/// Business Central runs a full synchronization without the modified-by filter: a change the
/// integration user made is read and carried over.
#[test]
fn a_full_run_reads_what_the_integration_user_changed() {
    let p = Project::new(
        &customers_both_ways("    on missing: create\n    on conflict: log"),
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    p.run_ok(&[]);
    let account = account_id(&p, "Alpha");
    p.put_as(
        "sales.account",
        json!({ "accountid": account, "name": "Written by the integration" }),
        INTEGRATION,
    );
    assert_eq!(p.run_ok(&[]).total(), zero());
    let o = p.run_ok(&["--full"]);
    assert_eq!(o.counts("CUST", "<-").modified, 1, "{:#}", o.report);
    assert_eq!(
        p.find("bc.Customer", "No.", "C1")["Name"],
        "Written by the integration"
    );
}

#[test]
fn an_edit_arrives_on_the_other_side_on_the_next_run_and_does_not_bounce_back() {
    let p = Project::new(
        &customers_both_ways("    on missing: create\n    on conflict: log"),
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    p.run_ok(&[]);
    let account = account_id(&p, "Alpha");

    // Business Central -> Sales.
    p.put(
        "bc.Customer",
        json!({ "No.": "C1", "Phone No.": "555-0100" }),
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.counts("CUST", "->").modified, 1);
    assert_eq!(o.counts("CUST", "<-"), zero());
    let synced = p.find("sales.account", "accountid", &account);
    assert_eq!(synced["telephone1"], "555-0100");
    assert_eq!(synced["@modified_by"], INTEGRATION);
    let customer_before = p.find("bc.Customer", "No.", "C1");

    // Sales -> Business Central.
    p.put(
        "sales.account",
        json!({ "accountid": account, "name": "Alpha Ltd" }),
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.counts("CUST", "->"), zero());
    assert_eq!(o.counts("CUST", "<-").modified, 1);
    let customer = p.find("bc.Customer", "No.", "C1");
    assert_eq!(customer["Name"], "Alpha Ltd");
    assert_eq!(customer["Phone No."], "555-0100");
    assert_ne!(customer["@modified_on"], customer_before["@modified_on"]);

    // Nothing comes back.
    let account_before = p.find("sales.account", "accountid", &account);
    let o = p.run_ok(&[]);
    assert_eq!(o.total(), zero(), "{:#}", o.report);
    assert_eq!(p.find("bc.Customer", "No.", "C1"), customer);
    assert_eq!(
        p.find("sales.account", "accountid", &account),
        account_before
    );
}

#[test]
fn the_run_right_after_a_full_synchronization_changes_nothing() {
    let p = Project::standard_with_fixture("small-company");
    let first = p.run_ok(&["--full"]);
    assert!(first.total().inserted >= 15, "{:#}", first.report);
    let tables = [
        "bc.Salesperson/Purchaser",
        "bc.Customer",
        "bc.Contact",
        "bc.Item",
        "bc.Resource",
        "sales.account",
        "sales.contact",
        "sales.product",
        "sales.transactioncurrency",
        "sales.uomschedule",
        "sales.pricelevel",
        "sales.productpricelevel",
        "sales.opportunity",
        "sales.invoice",
        "sales.invoicedetail",
    ];
    let before: Vec<_> = tables.iter().map(|t| p.show(t)).collect();
    let second = p.run_ok(&[]);
    let t = second.total();
    assert_eq!(
        (
            t.inserted,
            t.modified,
            t.deleted,
            t.coupled,
            t.failed,
            t.conflicts
        ),
        (0, 0, 0, 0, 0, 0),
        "{:#}",
        second.report
    );
    let writes: Vec<_> = second
        .actions
        .iter()
        .filter(|a| !matches!(a["kind"].as_str(), Some("unchanged" | "skip")))
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    for (table, records) in tables.iter().zip(before) {
        assert_eq!(p.show(table), records, "{table} changed");
    }
}

#[test]
fn a_full_run_does_not_truncate_values_that_nobody_edited() {
    let long = format!("Fabrikam {}", "Holdings ".repeat(14));
    assert!(long.chars().count() > 100);
    let p = Project::standard(
        json!({}),
        json!({ "account": [{ "name": long, "customertypecode": "Customer" }] }),
    );
    p.run_ok(&["--full"]);
    let customer = &p.show("bc.Customer")[0];
    assert_eq!(
        text(customer, "Name").chars().count(),
        100,
        "truncated into Business Central"
    );
    let o = p.run_ok(&["--full"]);
    let writes: Vec<_> = o.actions.iter().filter(|a| a["kind"] == "update").collect();
    assert!(writes.is_empty(), "{writes:#?}");
    assert_eq!(names(&p, "sales.account", "name"), [long]);
}

#[test]
fn an_incremental_run_reads_only_the_records_changed_since_the_last_run() {
    let p = Project::new(
        CUSTOMERS_ONE_WAY,
        bc_customers(&[("C1", "Alpha"), ("C2", "Beta"), ("C3", "Gamma")]),
        json!({}),
    );
    assert_eq!(p.run_ok(&[]).counts("CUST", "->").inserted, 3);
    p.put("bc.Customer", json!({ "No.": "C2", "Name": "Beta Ltd" }));
    let o = p.run_ok(&[]);
    assert_eq!(
        o.counts("CUST", "->"),
        Counts {
            modified: 1,
            ..zero()
        }
    );
    assert_eq!(o.actions.len(), 1, "{:#?}", o.actions);
    assert_eq!(o.actions[0]["source_id"], system_id(&p, "C2"));
    assert_eq!(
        names(&p, "sales.account", "name"),
        ["Alpha", "Beta Ltd", "Gamma"]
    );
}

#[test]
fn records_sharing_one_modified_on_are_all_synchronized_across_page_boundaries() {
    let seed: Vec<(String, String)> = (1..=7)
        .map(|i| (format!("C{i}"), format!("Customer {i}")))
        .collect();
    let refs: Vec<(&str, &str)> = seed.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let p = Project::new(CUSTOMERS_ONE_WAY, bc_customers(&refs), json!({}));
    assert_eq!(
        p.run_ok(&["--page-size", "2"])
            .counts("CUST", "->")
            .inserted,
        7
    );

    // One write stamps all seven with the same modified-on: pages of 2 split the group.
    let updates = p
        .show("bc.Customer")
        .iter()
        .map(|r| {
            let name = format!("{} v2", text(r, "Name"));
            (text(r, "SystemId").to_string(), json!({ "Name": name }))
        })
        .collect();
    p.update_together("bc", "Customer", updates);
    let stamps: std::collections::BTreeSet<String> = p
        .show("bc.Customer")
        .iter()
        .map(|r| text(r, "@modified_on").to_string())
        .collect();
    assert_eq!(
        stamps.len(),
        1,
        "the update did not share one stamp: {stamps:?}"
    );

    let o = p.run_ok(&["--page-size", "2"]);
    assert_eq!(o.counts("CUST", "->").modified, 7, "{:#}", o.report);
    let expected: Vec<String> = (1..=7).map(|i| format!("Customer {i} v2")).collect();
    assert_eq!(names(&p, "sales.account", "name"), expected);
    assert_eq!(p.run_ok(&["--page-size", "2"]).total(), zero());
}

// ---------------------------------------------------------------------------------------------
// Creating and coupling.

fn on_missing_project(policy: &str) -> Project {
    let map = CUSTOMERS_ONE_WAY.replace("on missing: create", &format!("on missing: {policy}"));
    let p = Project::new(&map, bc_customers(&[("C1", "Alpha")]), json!({}));
    // The initial synchronization (--full) creates what is missing, whatever the policy.
    assert_eq!(p.run_ok(&["--full"]).counts("CUST", "->").inserted, 1);
    p.put("bc.Customer", customer("C2", "Beta"));
    p
}

#[test]
fn on_missing_skip_leaves_new_records_alone_until_a_full_run() {
    let p = on_missing_project("skip");
    let o = p.run_ok(&[]);
    assert_eq!(
        o.counts("CUST", "->"),
        Counts {
            skipped: 1,
            ..zero()
        }
    );
    let reason = o.actions[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("on missing: skip"), "{reason}");
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha"]);
    assert_eq!(o.mappings()[0]["note"], Value::Null, "{:#}", o.report);

    let full = p.run_ok(&["--full"]);
    let c = full.counts("CUST", "->");
    assert_eq!((c.inserted, c.unchanged), (1, 1), "{c:?}");
    assert_eq!(
        full.mappings()[0]["note"],
        "full synchronization",
        "{:#}",
        full.report
    );
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha", "Beta"]);
}

#[test]
fn on_missing_create_creates_new_records_in_an_incremental_run() {
    let p = on_missing_project("create");
    let o = p.run_ok(&[]);
    assert_eq!(
        o.counts("CUST", "->"),
        Counts {
            inserted: 1,
            ..zero()
        }
    );
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha", "Beta"]);
}

#[test]
fn match_groups_are_tried_in_priority_order() {
    let map = r#"
mapping CUST: bc.Customer -> sales.account {
    couple by "E-Mail" == emailaddress1 ignoring case
    couple by Name == name
    on missing: create

    fields {
        Name        -> name
        "E-Mail"    -> emailaddress1
        "Phone No." -> telephone1
    }
}
"#;
    let p = Project::new(
        map,
        json!({ "Customer": [
            { "No.": "C1", "Name": "Alpha", "E-Mail": "Info@Alpha.example", "Phone No." : "1" },
            { "No.": "C2", "Name": "Beta", "Phone No." : "2" }
        ]}),
        json!({ "account": [
            { "accountid": "c0000000-0000-4000-8000-0000000000e1", "name": "Alpha Mail", "emailaddress1": "info@alpha.example" },
            { "accountid": "c0000000-0000-4000-8000-0000000000e2", "name": "Alpha" },
            { "accountid": "c0000000-0000-4000-8000-0000000000e3", "name": "Beta" }
        ]}),
    );
    let o = p.run_ok(&[]);
    let c = o.counts("CUST", "->");
    assert_eq!((c.coupled, c.inserted), (2, 0), "{:#}", o.report);
    let target_of = |no: &str| {
        let id = system_id(&p, no);
        o.actions
            .iter()
            .find(|a| a["source_id"] == id.as_str())
            .map(|a| a["target_id"].clone())
            .unwrap_or_default()
    };
    // The e-mail group comes first, though the name group would match another account.
    assert_eq!(target_of("C1"), "c0000000-0000-4000-8000-0000000000e1");
    assert_eq!(target_of("C2"), "c0000000-0000-4000-8000-0000000000e3");
    let by_mail = p.find(
        "sales.account",
        "accountid",
        "c0000000-0000-4000-8000-0000000000e1",
    );
    assert_eq!(by_mail["name"], "Alpha");
    assert_eq!(by_mail["telephone1"], "1");
    assert_eq!(p.show("sales.account").len(), 3);
}

#[test]
fn a_match_group_ignores_case_only_when_it_says_so() {
    let map = r#"
mapping CUST: bc.Customer -> sales.account {
    couple by Name == name
    couple by "E-Mail" == emailaddress1 ignoring case
    on missing: create

    fields {
        Name     -> name
        "E-Mail" -> emailaddress1
    }
}
"#;
    let p = Project::new(
        map,
        json!({ "Customer": [
            { "No.": "C1", "Name": "ALPHA", "E-Mail": "x@one.example" },
            { "No.": "C2", "Name": "Beta", "E-Mail": "SALES@BETA.EXAMPLE" }
        ]}),
        json!({ "account": [
            { "name": "alpha", "emailaddress1": "other@alpha.example" },
            { "name": "Beta Inc", "emailaddress1": "sales@beta.example" }
        ]}),
    );
    let o = p.run_ok(&[]);
    let c = o.counts("CUST", "->");
    // C1 matches neither group (the name group is case-sensitive): created. C2 matches by e-mail.
    assert_eq!((c.coupled, c.inserted), (1, 1), "{:#}", o.report);
    assert_eq!(
        names(&p, "sales.account", "name"),
        ["ALPHA", "Beta", "alpha"]
    );
}

#[test]
fn a_record_matching_several_targets_fails_and_asks_to_couple_by_hand() {
    let map = r#"
mapping CUST: bc.Customer -> sales.account {
    couple by Name == name
    on missing: create

    fields {
        Name -> name
    }
}
"#;
    let p = Project::new(
        map,
        bc_customers(&[("C1", "Twin")]),
        json!({ "account": [{ "name": "Twin" }, { "name": "Twin" }] }),
    );
    let o = p.run(&[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(o.counts("CUST", "->").failed, 1);
    let errors = p.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2 records of `account` match") && message.contains("coupler couple"),
        "{message}"
    );
    assert_eq!(p.show("sales.account").len(), 2);
}

#[test]
fn coupler_couple_pairs_two_records_and_the_next_run_brings_them_in_line() {
    let map = CUSTOMERS_ONE_WAY.replace("on missing: create", "on missing: skip");
    let p = Project::new(
        &map,
        json!({ "Customer": [{ "No.": "C1", "Name": "Alpha", "Phone No.": "1" }] }),
        json!({ "account": [{ "accountid": "c0000000-0000-4000-8000-0000000000a1", "name": "Alpha Inc", "telephone1": "2" }] }),
    );
    let left = system_id(&p, "C1");
    let m = p.map_arg();
    let out = p.coupler(&[
        "couple",
        "--profile",
        "test",
        &m,
        "--mapping",
        "CUST",
        "--left",
        &left,
        "--right",
        "c0000000-0000-4000-8000-0000000000a1",
    ]);
    assert_eq!(
        sync_support::code(&out),
        0,
        "{}",
        sync_support::stderr(&out)
    );
    assert_eq!(p.mapping_status("CUST")["couplings"], 1);
    let o = p.run_ok(&[]);
    assert_eq!(
        o.counts("CUST", "->"),
        Counts {
            modified: 1,
            ..zero()
        }
    );
    let accounts = p.show("sales.account");
    assert_eq!(accounts.len(), 1, "{accounts:#?}");
    assert_eq!(accounts[0]["name"], "Alpha");
    assert_eq!(accounts[0]["telephone1"], "1");
}

#[test]
fn coupler_couple_in_a_two_way_mapping_brings_the_pair_in_line_without_a_conflict() {
    let p = Project::new(
        &customers_both_ways("    on missing: skip\n    on conflict: log"),
        json!({ "Customer": [{ "No.": "C1", "Name": "Alpha", "Phone No.": "1" }] }),
        json!({ "account": [{ "accountid": "c0000000-0000-4000-8000-0000000000a1", "name": "Alpha Inc", "telephone1": "2" }] }),
    );
    let left = system_id(&p, "C1");
    let m = p.map_arg();
    let out = p.coupler(&[
        "couple",
        "--profile",
        "test",
        &m,
        "--mapping",
        "CUST",
        "--left",
        &left,
        "--right",
        "c0000000-0000-4000-8000-0000000000a1",
    ]);
    assert_eq!(
        sync_support::code(&out),
        0,
        "{}",
        sync_support::stderr(&out)
    );
    let o = p.run(&[]);
    assert_eq!(o.total().conflicts, 0, "{:#}", o.report);
    assert_eq!(o.code, 0);
    let customer = p.find("bc.Customer", "No.", "C1");
    let account = p.find(
        "sales.account",
        "accountid",
        "c0000000-0000-4000-8000-0000000000a1",
    );
    assert_eq!(customer["Name"], account["name"]);
    assert_eq!(customer["Phone No."], account["telephone1"]);
}

fn uncouple_args(p: &Project, left: &str) -> Vec<String> {
    [
        "uncouple",
        "--profile",
        "test",
        &p.map_arg(),
        "--mapping",
        "CUST",
        "--left",
        left,
    ]
    .map(str::to_string)
    .to_vec()
}

fn coupler_ok(p: &Project, args: &[String]) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.coupler(&args);
    assert_eq!(
        sync_support::code(&out),
        0,
        "coupler {args:?}: {}",
        sync_support::stderr(&out)
    );
}

#[test]
fn coupler_uncouple_removes_a_coupling_and_refuses_one_that_does_not_exist() {
    let p = Project::new(
        CUSTOMERS_ONE_WAY,
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    p.run_ok(&[]);
    assert_eq!(p.mapping_status("CUST")["couplings"], 1);
    let args = uncouple_args(&p, &system_id(&p, "C1"));
    coupler_ok(&p, &args);
    assert_eq!(p.mapping_status("CUST")["couplings"], 0);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let again = p.coupler(&args);
    assert_eq!(sync_support::code(&again), 2);
    assert!(
        sync_support::stderr(&again).contains("no coupling of `CUST`"),
        "{}",
        sync_support::stderr(&again)
    );
}

#[test]
fn after_uncouple_a_full_run_creates_a_new_record() {
    let p = Project::new(
        CUSTOMERS_ONE_WAY,
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    p.run_ok(&[]);
    coupler_ok(&p, &uncouple_args(&p, &system_id(&p, "C1")));
    // Uncoupled, the customer is a new record to a full run: a second account appears.
    assert_eq!(p.run_ok(&["--full"]).counts("CUST", "->").inserted, 1);
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha", "Alpha"]);
}

#[test]
fn a_create_never_takes_over_a_record_coupled_by_hand_to_another_source() {
    let p = Project::new(
        CUSTOMERS_ONE_WAY,
        bc_customers(&[("C1", "Alpha"), ("C2", "Beta")]),
        json!({}),
    );
    p.run_ok(&[]);
    // The consultant decides Alpha's account belongs to C2 (Beta's account is left alone).
    let alpha_account = account_id(&p, "Alpha");
    let c1 = system_id(&p, "C1");
    let c2 = system_id(&p, "C2");
    coupler_ok(&p, &uncouple_args(&p, &c1));
    coupler_ok(
        &p,
        &[
            "couple",
            "--profile",
            "test",
            &p.map_arg(),
            "--mapping",
            "CUST",
            "--left",
            &c2,
            "--right",
            &alpha_account,
        ]
        .map(str::to_string),
    );
    p.run_ok(&["--full"]);
    // C1 is not coupled: it gets an account of its own; C2 keeps the one coupled by hand.
    let c1_account = p
        .show("sales.account")
        .into_iter()
        .find(|a| a["accountid"] != alpha_account.as_str() && a["name"] == "Alpha");
    assert!(c1_account.is_some(), "{:#?}", p.show("sales.account"));
    assert_eq!(
        p.find("sales.account", "accountid", &alpha_account)["name"],
        "Beta",
        "the account coupled by hand to C2 was taken over"
    );
}

// ---------------------------------------------------------------------------------------------
// Update conflicts.

/// Synchronizes C1 "Alpha", then edits it on both sides.
fn conflicting_edits(policy: &str) -> Project {
    let p = Project::new(
        &customers_both_ways(&format!(
            "    on missing: create\n    on conflict: {policy}"
        )),
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    p.run_ok(&[]);
    let account = account_id(&p, "Alpha");
    p.put("bc.Customer", json!({ "No.": "C1", "Name": "Alpha BC" }));
    p.put(
        "sales.account",
        json!({ "accountid": account, "name": "Alpha Sales" }),
    );
    p
}

#[test]
fn on_conflict_log_records_the_conflict_and_changes_neither_side() {
    let p = conflicting_edits("log");
    let o = p.run(&[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    // One conflict, reported once (by the `->` pass), not once per direction.
    assert_eq!(o.mapping_total("CUST").conflicts, 1, "{:#}", o.report);
    assert_eq!(o.mapping_total("CUST").failed, 1, "{:#}", o.report);
    assert_eq!(o.mapping_total("CUST").modified, 0);
    assert_eq!(p.find("bc.Customer", "No.", "C1")["Name"], "Alpha BC");
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha Sales"]);
    let errors = p.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    for e in &errors {
        assert!(
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("update conflict"),
            "{e:#}"
        );
        assert_eq!(e["kind"], "update-conflict", "{e:#}");
    }
}

#[test]
fn an_update_conflict_clears_once_both_sides_agree() {
    let p = conflicting_edits("log");
    assert_eq!(p.run(&[]).code, 1);
    // As the message advises: edit one side (here: Sales takes Business Central's value).
    let account = account_id(&p, "Alpha Sales");
    p.put(
        "sales.account",
        json!({ "accountid": account, "name": "Alpha BC" }),
    );
    let o = p.run(&[]);
    assert_eq!(o.total().conflicts, 0, "{:#}", o.report);
    assert_eq!(o.code, 0);
    assert!(p.errors().is_empty(), "{:#?}", p.errors());
}

#[test]
fn on_conflict_bc_wins_writes_business_centrals_values_to_sales() {
    let p = conflicting_edits("bc wins");
    let o = p.run_ok(&[]);
    assert_eq!(o.mapping_total("CUST").failed, 0);
    assert_eq!(p.find("bc.Customer", "No.", "C1")["Name"], "Alpha BC");
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha BC"]);
    assert_eq!(p.run_ok(&[]).total(), zero());
}

#[test]
fn on_conflict_sales_wins_writes_sales_values_to_business_central() {
    let p = conflicting_edits("sales wins");
    let o = p.run_ok(&[]);
    assert_eq!(o.mapping_total("CUST").failed, 0);
    assert_eq!(p.find("bc.Customer", "No.", "C1")["Name"], "Alpha Sales");
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha Sales"]);
    assert_eq!(p.run_ok(&[]).total(), zero());
}

// ---------------------------------------------------------------------------------------------
// Deletions.

fn deletion_project(policy: &str, both_ways: bool) -> Project {
    let map = if both_ways {
        customers_both_ways(&format!(
            "    on missing: create\n    on conflict: log\n    on delete: {policy}"
        ))
    } else {
        CUSTOMERS_ONE_WAY.replace("on delete: ignore", &format!("on delete: {policy}"))
    };
    let p = Project::new(&map, bc_customers(&[("C1", "Alpha")]), json!({}));
    p.run_ok(&[]);
    assert_eq!(p.mapping_status("CUST")["couplings"], 1);
    p
}

#[test]
fn on_delete_uncouple_removes_the_coupling_of_a_deleted_source_record() {
    let p = deletion_project("uncouple", false);
    p.delete("bc", "Customer", &system_id(&p, "C1"));
    let o = p.run_ok(&[]);
    assert_eq!(o.counts("CUST", "->").deleted, 1, "{:#}", o.report);
    assert_eq!(o.actions_of_kind("uncouple").len(), 1);
    assert_eq!(p.mapping_status("CUST")["couplings"], 0);
    // The other record stays.
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha"]);
}

#[test]
fn on_delete_uncouple_removes_the_coupling_of_a_deleted_target_record() {
    let p = deletion_project("uncouple", false);
    p.delete("sales", "account", &account_id(&p, "Alpha"));
    p.put("bc.Customer", json!({ "No.": "C1", "Name": "Alpha 2" }));
    let o = p.run_ok(&[]);
    assert_eq!(o.actions_of_kind("uncouple").len(), 1, "{:#?}", o.actions);
    assert_eq!(p.mapping_status("CUST")["couplings"], 0);
    assert!(p.show("sales.account").is_empty());
}

#[test]
fn on_delete_ignore_keeps_the_coupling_and_does_not_recreate() {
    let p = deletion_project("ignore", false);
    p.delete("sales", "account", &account_id(&p, "Alpha"));
    p.put("bc.Customer", json!({ "No.": "C1", "Name": "Alpha 2" }));
    let o = p.run_ok(&[]);
    assert_eq!(
        o.counts("CUST", "->"),
        Counts {
            skipped: 1,
            ..zero()
        }
    );
    let reason = o.actions[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("on delete: ignore"), "{reason}");
    assert!(p.show("sales.account").is_empty());
    assert_eq!(p.mapping_status("CUST")["couplings"], 1);
}

#[test]
fn on_delete_restore_recreates_a_deleted_record_from_its_partner() {
    let p = deletion_project("restore", true);
    p.put(
        "sales.account",
        json!({ "accountid": account_id(&p, "Alpha"), "telephone1": "555-0100" }),
    );
    p.run_ok(&[]);
    let deleted = system_id(&p, "C1");
    p.delete("bc", "Customer", &deleted);
    assert!(p.show("bc.Customer").is_empty());
    let o = p.run_ok(&[]);
    assert_eq!(o.actions_of_kind("restore").len(), 1, "{:#?}", o.actions);
    let customers = p.show("bc.Customer");
    assert_eq!(customers.len(), 1, "{customers:#?}");
    assert_eq!(customers[0]["Name"], "Alpha");
    assert_eq!(customers[0]["Phone No."], "555-0100");
    // Restored under its old id, so the coupling holds and the next run is quiet.
    assert_eq!(customers[0]["SystemId"], deleted.as_str());
    assert_eq!(p.mapping_status("CUST")["couplings"], 1);
    assert_eq!(p.run_ok(&[]).total(), zero());
}

// ---------------------------------------------------------------------------------------------
// Lookups and modifiers.

#[test]
fn the_primary_contact_is_patched_in_after_contacts_ran() {
    let p = Project::standard(
        json!({
            "Contact": [
                { "No.": "CT1", "Type": "Company", "Name": "Alpha Company" },
                { "No.": "CT2", "Type": "Person", "Company No.": "CT1", "First Name": "Ann", "Surname": "Lee" }
            ],
            "Contact Business Relation": [
                { "Contact No.": "CT1", "Business Relation Code": "CUST", "Link to Table": "Customer", "No.": "C1" }
            ],
            "Customer": [{ "No.": "C1", "Name": "Alpha", "Primary Contact No.": "CT2" }]
        }),
        json!({}),
    );
    let o = p.run_ok(&["--full"]);
    let order: Vec<String> = o
        .mappings()
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m["mapping"].as_str().unwrap_or(""),
                m["direction"].as_str().unwrap_or("")
            )
        })
        .collect();
    let at = |k: &str| order.iter().position(|x| x == k).unwrap_or(usize::MAX);
    assert!(at("CUSTOMER ->") < at("CONTACT ->"), "{order:?}");
    assert!(at("CONTACT ->") < at("CUSTOMER -> (deferred)"), "{order:?}");
    assert_eq!(o.counts("CUSTOMER", "-> (deferred)").modified, 1);
    let contact = p.find("sales.contact", "lastname", "Lee");
    assert_eq!(
        p.find("sales.account", "name", "Alpha")["primarycontactid"],
        contact["contactid"]
    );
}

#[test]
fn a_change_of_only_the_deferred_field_is_synchronized() {
    let p = Project::standard(
        json!({
            "Contact": [
                { "No.": "CT1", "Type": "Company", "Name": "Alpha Company" },
                { "No.": "CT2", "Type": "Person", "Company No.": "CT1", "First Name": "Ann", "Surname": "Lee" },
                { "No.": "CT3", "Type": "Person", "Company No.": "CT1", "First Name": "Bo", "Surname": "Kim" }
            ],
            "Contact Business Relation": [
                { "Contact No.": "CT1", "Business Relation Code": "CUST", "Link to Table": "Customer", "No.": "C1" }
            ],
            "Customer": [{ "No.": "C1", "Name": "Alpha", "Primary Contact No.": "CT2" }]
        }),
        json!({}),
    );
    p.run_ok(&["--full"]);
    p.put(
        "bc.Customer",
        json!({ "SystemId": system_id(&p, "C1"), "Primary Contact No.": "CT3" }),
    );
    let o = p.run_ok(&[]);
    assert_eq!(
        o.counts("CUSTOMER", "-> (deferred)").modified,
        1,
        "{:#}",
        o.report
    );
    let kim = p.find("sales.contact", "lastname", "Kim");
    assert_eq!(
        p.find("sales.account", "name", "Alpha")["primarycontactid"],
        kim["contactid"]
    );
}

#[test]
fn clear_on_fail_leaves_a_lookup_blank_instead_of_failing_the_record() {
    // A company contact is not synchronized (persons only): the lookup cannot be resolved.
    let p = Project::standard(
        json!({
            "Contact": [{ "No.": "CT1", "Type": "Company", "Name": "Beta Company" }],
            "Customer": [{ "No.": "C2", "Name": "Beta", "Primary Contact No.": "CT1" }]
        }),
        json!({}),
    );
    let o = p.run_ok(&["--full"]);
    assert_eq!(o.mapping_total("CUSTOMER").failed, 0);
    assert_eq!(
        p.find("sales.account", "name", "Beta")["primarycontactid"],
        Value::Null
    );
}

#[test]
fn clear_on_fail_does_not_erase_the_value_in_the_source_system() {
    let p = Project::standard(
        json!({
            "Contact": [{ "No.": "CT1", "Type": "Company", "Name": "Beta Company" }],
            "Customer": [{ "No.": "C2", "Name": "Beta", "Primary Contact No.": "CT1" }]
        }),
        json!({}),
    );
    let o = p.run_ok(&["--full"]);
    let customer = p.find("bc.Customer", "No.", "C2");
    assert_eq!(customer["Primary Contact No."], "CT1", "{:#?}", o.actions);
    assert_eq!(customer["@modified_by"], "seed");
}

#[test]
fn a_lookup_without_clear_on_fail_fails_the_record_with_its_reason() {
    // GOLD is no currency of Business Central's, so CURRENCY never couples it; a customer
    // refers to it.
    let p = Project::standard(
        json!({
            "Customer": [
                { "No.": "C1", "Name": "Alpha", "Currency Code": "GOLD" },
                { "No.": "C2", "Name": "Beta" }
            ]
        }),
        json!({}),
    );
    let o = p.run(&["--full"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(o.counts("CUSTOMER", "->").failed, 1);
    assert_eq!(o.counts("CUSTOMER", "->").inserted, 1);
    assert_eq!(names(&p, "sales.account", "name"), ["Beta"]);
    let errors = p.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["mapping"], "CUSTOMER");
    assert_eq!(errors[0]["direction"], "->");
    assert_eq!(errors[0]["source_id"], system_id(&p, "C1"));
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`GOLD` has no coupled record in `CURRENCY`"),
        "{message}"
    );
    assert_eq!(p.mapping_status("CUSTOMER")["failures"], 1);
}

#[test]
fn not_null_keeps_the_current_owner_when_there_is_no_salesperson() {
    let owner = "c0000000-0000-4000-8000-00000000000b";
    let map = r#"
mapping USERS: bc."Salesperson/Purchaser" <- sales.systemuser {
    couple by "E-Mail" == internalemailaddress
    on missing: create

    fields {
        "E-Mail" <- internalemailaddress | truncate(80)
    }
}

mapping CUST: bc.Customer -> sales.account {
    couple by Name == name
    on missing: create

    fields {
        'systemuser'       -> owneridtype
        "Salesperson Code" -> ownerid via USERS [not null]
        Name               -> name
        "Phone No."        -> telephone1
    }
}
"#;
    let p = Project::new(
        map,
        json!({ "Customer": [{ "No.": "C1", "Name": "Alpha", "Phone No.": "1" }] }),
        json!({ "account": [{ "name": "Alpha", "ownerid": owner, "owneridtype": "systemuser" }] }),
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.counts("CUST", "->").coupled, 1);
    let account = p.find("sales.account", "name", "Alpha");
    assert_eq!(
        account["telephone1"], "1",
        "the pair was not brought in line"
    );
    assert_eq!(account["ownerid"], owner);
}

#[test]
fn an_item_created_from_a_sales_product_sends_later_edits_back_to_sales() {
    let p = Project::standard(
        json!({}),
        json!({ "product": [
            { "productnumber": "P-100", "name": "Desk Lamp", "producttypecode": "Sales Inventory",
              "statecode": "Active" }
        ]}),
    );
    p.run_ok(&["--full"]);
    let item = p.find("bc.Item", "Description", "Desk Lamp");
    p.put(
        "bc.Item",
        json!({ "No.": item["No."], "Description": "Desk Lamp XL" }),
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.counts("ITEM-PRODUCT", "->").modified, 1, "{:#}", o.report);
    assert_eq!(names(&p, "sales.product", "name"), ["Desk Lamp XL"]);
}

// ---------------------------------------------------------------------------------------------
// Failures and retries.

const CURRENCY_AND_CUSTOMERS: &str = r#"
mapping CURR: bc.Currency -> sales.transactioncurrency {
    where bc: "ISO Code" != ''
    couple by Code == isocurrencycode
    on missing: create

    fields {
        Code        -> isocurrencycode
        Description -> currencyname
    }
}

mapping CUST: bc.Customer -> sales.account {
    on missing: create

    fields {
        Name            -> name
        "Currency Code" -> transactioncurrencyid via CURR
    }
}
"#;

#[test]
fn a_failed_record_is_retried_on_the_next_run_without_being_changed() {
    let p = Project::new(
        CURRENCY_AND_CUSTOMERS,
        json!({ "Customer": [{ "No.": "C1", "Name": "Alpha", "Currency Code": "EUR" }] }),
        json!({}),
    );
    let o = p.run(&[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let errors = p.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["attempts"], 1);
    assert!(errors[0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("has no coupled record in `CURR`"));

    // The dependency appears; the customer itself does not change.
    p.put(
        "bc.Currency",
        json!({ "Code": "EUR", "ISO Code": "EUR", "Description": "Euro" }),
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.counts("CURR", "->").inserted, 1);
    assert_eq!(
        o.counts("CUST", "->"),
        Counts {
            inserted: 1,
            ..zero()
        }
    );
    assert!(p.errors().is_empty(), "{:#?}", p.errors());
    assert_eq!(
        p.find("sales.account", "name", "Alpha")["transactioncurrencyid"],
        p.find("sales.transactioncurrency", "isocurrencycode", "EUR")["transactioncurrencyid"]
    );
}

#[test]
fn a_failed_record_that_changed_since_is_processed_once() {
    let map = r#"
mapping CUST: bc.Customer <- sales.account {
    on missing: create

    fields {
        Name <- name
    }
}
"#;
    let account = "c0000000-0000-4000-8000-0000000000a1";
    let p = Project::new(
        map,
        json!({}),
        json!({ "account": [{ "accountid": account, "name": "N".repeat(120) }] }),
    );
    assert_eq!(p.run(&[]).code, 1);
    p.put(
        "sales.account",
        json!({ "accountid": account, "name": "Short" }),
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.actions.len(), 1, "{:#?}", o.actions);
    assert_eq!(
        o.counts("CUST", "<-"),
        Counts {
            inserted: 1,
            ..zero()
        }
    );
}

#[test]
fn coupler_errors_retry_runs_only_the_failed_records() {
    let p = Project::new(
        CURRENCY_AND_CUSTOMERS,
        json!({
            "Currency": [{ "Code": "EUR", "ISO Code": "", "Description": "Euro" }],
            "Customer": [
                { "No.": "C1", "Name": "Alpha", "Currency Code": "EUR" },
                { "No.": "C2", "Name": "Beta" }
            ]
        }),
        json!({ "transactioncurrency": [
            { "transactioncurrencyid": "c0000000-0000-4000-8000-0000000000c2", "isocurrencycode": "EUR" }
        ]}),
    );
    assert_eq!(p.run(&[]).code, 1);
    assert_eq!(p.errors().len(), 1);
    // Fix: couple the currency by hand. Meanwhile someone edits Beta.
    let eur = text(&p.find("bc.Currency", "Code", "EUR"), "SystemId").to_string();
    let m = p.map_arg();
    let out = p.coupler(&[
        "couple",
        "--profile",
        "test",
        &m,
        "--mapping",
        "CURR",
        "--left",
        &eur,
        "--right",
        "c0000000-0000-4000-8000-0000000000c2",
    ]);
    assert_eq!(
        sync_support::code(&out),
        0,
        "{}",
        sync_support::stderr(&out)
    );
    p.put("bc.Customer", json!({ "No.": "C2", "Name": "Beta Ltd" }));

    let out = p.coupler(&["errors", "--profile", "test", &m, "--retry"]);
    assert_eq!(
        sync_support::code(&out),
        0,
        "{}",
        sync_support::stderr(&out)
    );
    assert!(p.errors().is_empty(), "{:#?}", p.errors());
    let alpha = p.find("sales.account", "name", "Alpha");
    assert_eq!(
        alpha["transactioncurrencyid"],
        "c0000000-0000-4000-8000-0000000000c2"
    );
    // Beta's edit waits for the next ordinary run.
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha", "Beta"]);
    p.run_ok(&[]);
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha", "Beta Ltd"]);
}

#[test]
fn a_value_too_long_for_the_target_fails_the_record_with_the_field_and_length() {
    let map = r#"
mapping CUST: bc.Customer <- sales.account {
    on missing: create

    fields {
        Name <- name
    }
}
"#;
    let long = "N".repeat(120);
    let p = Project::new(
        map,
        json!({}),
        json!({ "account": [{ "name": long }, { "name": "Short" }] }),
    );
    let o = p.run(&[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(
        (
            o.counts("CUST", "<-").inserted,
            o.counts("CUST", "<-").failed
        ),
        (1, 1)
    );
    let errors = p.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`Name`") && message.contains("120") && message.contains("100"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Dry runs and selection.

#[test]
fn a_dry_run_writes_nothing() {
    let p = Project::standard_with_fixture("small-company");
    // Load the seeds first, so that the comparison sees only what the dry run does.
    let tables = [
        "bc.Customer",
        "bc.Contact",
        "bc.Item",
        "sales.account",
        "sales.contact",
        "sales.product",
    ];
    let before: Vec<_> = tables.iter().map(|t| p.show(t)).collect();
    // The initial synchronization as a dry run: it predicts the lookups of records it would
    // create, so it fails nothing (exit 0) and writes nothing.
    let o = p.run_ok(&["--dry-run", "--full"]);
    assert_eq!(o.report["dry_run"], true);
    assert!(o.total().inserted > 0, "{:#}", o.report);
    for (table, records) in tables.iter().zip(before) {
        assert_eq!(p.show(table), records, "the dry run changed {table}");
    }
    let status = p.status();
    assert_eq!(status["last_run"], Value::Null, "{status:#}");
    for m in status["mappings"].as_array().expect("mappings") {
        assert_eq!(m["couplings"], 0, "{m:#}");
        assert_eq!(m["watermark_left"], Value::Null, "{m:#}");
        assert_eq!(m["watermark_right"], Value::Null, "{m:#}");
    }
}

/// Actions without the ids coupler chooses for new records.
fn comparable(actions: &[Value]) -> Vec<Value> {
    actions
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if a["kind"] == "create" {
                a.as_object_mut().map(|o| o.remove("target_id"));
            }
            a
        })
        .collect()
}

#[test]
fn a_dry_run_shows_each_action_and_the_real_run_does_exactly_that() {
    let map = CUSTOMERS_ONE_WAY
        .replace("on missing: create", "on missing: skip")
        .replace("    on delete", "    couple by Name == name\n    on delete");
    let p = Project::new(
        &map,
        bc_customers(&[("C1", "Alpha")]),
        json!({ "account": [{ "accountid": "c0000000-0000-4000-8000-0000000000b1", "name": "Beta" }] }),
    );
    p.run_ok(&["--full"]);
    p.put(
        "bc.Customer",
        json!({ "No.": "C1", "Phone No.": "555-0100" }),
    );
    p.put("bc.Customer", customer("C2", "Beta"));
    p.put("bc.Customer", customer("C3", "Gamma"));

    let dry = p.run_ok(&["--dry-run"]);
    let kinds = |o: &sync_support::Outcome| {
        let mut k: Vec<(String, String)> = o
            .actions
            .iter()
            .map(|a| {
                (
                    a["source_id"].as_str().unwrap_or("").to_string(),
                    a["kind"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        k.sort();
        k
    };
    let mut expected = vec![
        (system_id(&p, "C1"), "update".to_string()),
        (system_id(&p, "C2"), "couple".to_string()),
        (system_id(&p, "C3"), "skip".to_string()),
    ];
    expected.sort();
    assert_eq!(kinds(&dry), expected);
    let update = dry.actions_of_kind("update")[0];
    assert_eq!(
        update["changes"],
        json!([{ "field": "telephone1", "old": null, "new": "555-0100" }])
    );
    assert_eq!(
        dry.actions_of_kind("couple")[0]["target_id"],
        "c0000000-0000-4000-8000-0000000000b1"
    );
    // Nothing was written.
    assert_eq!(
        p.find("sales.account", "name", "Alpha")["telephone1"],
        Value::Null
    );
    assert_eq!(p.mapping_status("CUST")["couplings"], 1);

    // The text form prints old -> new.
    let m = p.map_arg();
    let out = p.coupler(&["run", "--profile", "test", &m, "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("telephone1: null -> \"555-0100\""),
        "{stdout}"
    );
    assert!(stdout.contains("dry run: nothing was written"), "{stdout}");

    let real = p.run_ok(&[]);
    assert_eq!(real.counts("CUST", "->"), dry.counts("CUST", "->"));
    assert_eq!(comparable(&real.actions), comparable(&dry.actions));
    assert_eq!(
        p.find("sales.account", "name", "Alpha")["telephone1"],
        "555-0100"
    );
    assert_eq!(p.mapping_status("CUST")["couplings"], 2);
}

#[test]
fn a_dry_run_predicts_records_that_refer_to_records_created_earlier_in_the_run() {
    let p = Project::standard(
        json!({
            "Customer": [{ "No.": "C1", "Name": "Alpha" }],
            "Sales Invoice Header": [{ "No.": "INV1", "Sell-to Customer No.": "C1" }]
        }),
        json!({}),
    );
    // The initial synchronization, first as a dry run.
    let dry = p.run(&["--dry-run", "--full"]);
    let real = p.run(&["--full"]);
    assert_eq!(real.code, 0, "{}", real.stderr);
    assert_eq!(dry.code, real.code, "the dry run's exit code differs");
    for m in ["CUSTOMER", "POSTEDSALESINV-INV"] {
        assert_eq!(dry.counts(m, "->"), real.counts(m, "->"), "{m}");
    }
    // The invoice refers to the customer the same run creates: predicted as a create.
    let invoice = |o: &sync_support::Outcome| -> Vec<String> {
        o.actions_of("POSTEDSALESINV-INV")
            .iter()
            .map(|a| a["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(invoice(&dry), ["create"], "{:#?}", dry.actions);
    assert_eq!(invoice(&real), ["create"], "{:#?}", real.actions);
    // Every action the real run took, the dry run showed, for the same record. Only the real
    // run reports `unchanged` for what it created itself and then read in the other direction
    // (the full run's `<-` pass sees the new account; the dry run never made it).
    let key = |a: &Value| {
        (
            a["mapping"].as_str().unwrap_or_default().to_string(),
            a["direction"].as_str().unwrap_or_default().to_string(),
            a["kind"].as_str().unwrap_or_default().to_string(),
            a["source_id"].as_str().unwrap_or_default().to_string(),
        )
    };
    let mut predicted: Vec<_> = comparable(&dry.actions).iter().map(key).collect();
    let mut taken: Vec<_> = comparable(&real.actions)
        .iter()
        .map(key)
        .filter(|k| k.2 != "unchanged")
        .collect();
    predicted.sort();
    taken.sort();
    assert_eq!(predicted, taken);
}

#[test]
fn select_runs_only_the_selected_mappings_and_their_dependencies() {
    let p = Project::standard(
        json!({
            "Currency": [{ "Code": "EUR", "ISO Code": "EUR", "Description": "Euro" }],
            "Customer": [{ "No.": "C1", "Name": "Alpha", "Currency Code": "EUR" }],
            "Item": [{ "No.": "1000", "Description": "Bicycle", "Blocked": false }]
        }),
        json!({}),
    );
    let o = p.run_ok(&["--select", "CURRENCY", "--full"]);
    assert_eq!(o.mapping_order(), ["CURRENCY"]);
    // USD: the organization's base currency, in Sales from the start as in every environment.
    assert_eq!(
        names(&p, "sales.transactioncurrency", "isocurrencycode"),
        ["EUR", "USD"]
    );
    assert!(p.show("sales.account").is_empty());

    let o = p.run_ok(&["--select", "+CUSTOMER", "--full"]);
    let order = o.mapping_order();
    assert!(order.contains(&"CUSTOMER".to_string()), "{order:?}");
    assert!(order.contains(&"SALESPEOPLE".to_string()), "{order:?}");
    assert!(!order.contains(&"ITEM-PRODUCT".to_string()), "{order:?}");
    assert!(
        !order.contains(&"POSTEDSALESINV-INV".to_string()),
        "{order:?}"
    );
    let alpha = p.find("sales.account", "name", "Alpha");
    assert_eq!(
        alpha["transactioncurrencyid"],
        p.find("sales.transactioncurrency", "isocurrencycode", "EUR")["transactioncurrencyid"]
    );
    assert!(p.show("sales.product").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Status and exit codes.

#[test]
fn status_recommends_how_to_start_each_mapping() {
    let map = r#"
mapping CURR: bc."Unit of Measure" -> sales.uomschedule {
    fields {
        Code -> name
    }
}

mapping CUST: bc.Customer <-> sales.account {
    on conflict: log

    fields {
        Name <-> name
    }
}

mapping ITEMS: bc.Item -> sales.product {
    fields {
        "No." -> productnumber
    }
}
"#;
    let p = Project::new(
        map,
        json!({
            "Customer": [{ "No.": "C1", "Name": "Alpha" }],
            "Item": [{ "No.": "1000", "Description": "Bicycle" }]
        }),
        json!({ "account": [{ "name": "Alpha" }] }),
    );
    let recommendation = |m: &str| {
        p.mapping_status(m)["recommendation"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        recommendation("CURR").starts_with("nothing to do"),
        "{}",
        recommendation("CURR")
    );
    assert!(
        recommendation("CUST").starts_with("couple records"),
        "{}",
        recommendation("CUST")
    );
    assert!(
        recommendation("ITEMS").starts_with("full synchronization"),
        "{}",
        recommendation("ITEMS")
    );
    let cust = p.mapping_status("CUST");
    assert_eq!(
        (cust["left_records"].clone(), cust["right_records"].clone()),
        (json!(1), json!(1))
    );
}

#[test]
fn a_first_run_does_not_duplicate_records_that_status_says_to_couple() {
    let p = Project::standard(
        json!({ "Customer": [{ "No.": "C1", "Name": "Alpha" }] }),
        json!({ "account": [{ "name": "Alpha", "customertypecode": "Customer" }] }),
    );
    let recommendation = || {
        p.mapping_status("CUSTOMER")["recommendation"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        recommendation().starts_with("couple records"),
        "{}",
        recommendation()
    );
    // `on missing: skip`, no --full: even the first run synchronizes only coupled records, and
    // says why it skipped the others.
    let o = p.run_ok(&[]);
    let skipped = Counts {
        skipped: 1,
        ..zero()
    };
    assert_eq!(o.counts("CUSTOMER", "->"), skipped, "{:#}", o.report);
    assert_eq!(o.counts("CUSTOMER", "<-"), skipped, "{:#}", o.report);
    let actions = o.actions_of("CUSTOMER");
    assert_eq!(actions.len(), 2, "{actions:#?}");
    for a in actions {
        assert_eq!(a["kind"], "skip", "{a:#}");
        let reason = a["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("on missing: skip")
                && reason.contains("coupler couple")
                && reason.contains("--full"),
            "{reason}"
        );
    }
    for m in o.mappings() {
        assert_eq!(m["note"], Value::Null, "not a full synchronization: {m:#}");
    }
    assert_eq!(names(&p, "bc.Customer", "Name"), ["Alpha"]);
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha"]);
    assert_eq!(p.mapping_status("CUSTOMER")["couplings"], 0);
    assert!(
        recommendation().starts_with("couple records"),
        "{}",
        recommendation()
    );

    // As recommended: couple the pair by hand; the next run keeps it one pair.
    let m = p.map_arg();
    let out = p.coupler(&[
        "couple",
        "--profile",
        "test",
        &m,
        "--mapping",
        "CUSTOMER",
        "--left",
        &system_id(&p, "C1"),
        "--right",
        &account_id(&p, "Alpha"),
    ]);
    assert_eq!(
        sync_support::code(&out),
        0,
        "{}",
        sync_support::stderr(&out)
    );
    let o = p.run_ok(&[]);
    assert_eq!(o.mapping_total("CUSTOMER").conflicts, 0, "{:#}", o.report);
    assert_eq!(o.mapping_total("CUSTOMER").inserted, 0, "{:#}", o.report);
    assert_eq!(names(&p, "bc.Customer", "Name"), ["Alpha"]);
    assert_eq!(names(&p, "sales.account", "name"), ["Alpha"]);
    assert_eq!(p.mapping_status("CUSTOMER")["couplings"], 1);
    assert!(
        recommendation().starts_with("incremental"),
        "{}",
        recommendation()
    );
}

fn expect_usage_error(p: &Project, args: &[&str], needle: &str) {
    let out = p.coupler(args);
    let err = sync_support::stderr(&out);
    assert_eq!(sync_support::code(&out), 2, "{err}");
    assert!(err.contains(needle), "expected `{needle}` in:\n{err}");
}

#[test]
fn exit_code_2_for_a_missing_profile() {
    let p = Project::new(CUSTOMERS_ONE_WAY, json!({}), json!({}));
    let m = p.map_arg();
    expect_usage_error(&p, &["run", "--profile", "tset", &m], "no profile `tset`");
}

#[test]
fn exit_code_2_for_a_malformed_profile() {
    let p = Project::new(CUSTOMERS_ONE_WAY, json!({}), json!({}));
    sync_support::write(
        &p.root().join("coupler.yaml"),
        "profiles:\n  test:\n    sytems: {}\n    state: state/state.db\n",
    );
    let m = p.map_arg();
    expect_usage_error(&p, &["run", "--profile", "test", &m], "coupler.yaml");
    expect_usage_error(&p, &["run", "--profile", "test", &m], "sytems");
}

#[test]
fn exit_code_2_for_a_missing_seed() {
    let p = Project::new(CUSTOMERS_ONE_WAY, json!({}), json!({}));
    std::fs::remove_dir_all(p.root().join("seed/bc")).expect("remove seed");
    let m = p.map_arg();
    expect_usage_error(&p, &["run", "--profile", "test", &m], "cannot read seed");
}

#[test]
fn exit_code_2_for_a_malformed_seed_and_nothing_half_loaded() {
    let p = Project::new(CUSTOMERS_ONE_WAY, json!({}), json!({}));
    sync_support::write(
        &p.root().join("seed/bc/seed.json"),
        "{ \"Customer\": [ { \"No.\": \"C1\", \"Name\": \"Alpha\" }, { \"No.\": } ] }",
    );
    let m = p.map_arg();
    expect_usage_error(&p, &["run", "--profile", "test", &m], "is not valid JSON");
    assert!(!p.root().join("state/bc.db").exists());
    // A record that does not fit its table names the table, the record and the field.
    sync_support::write(
        &p.root().join("seed/bc/seed.json"),
        "{ \"Customer\": [ { \"No.\": \"C1\", \"Nmae\": \"Alpha\" } ] }",
    );
    expect_usage_error(
        &p,
        &["run", "--profile", "test", &m],
        "`Customer`[0]: `Nmae`",
    );
    assert!(!p.root().join("state/bc.db").exists());
}

#[test]
fn exit_code_2_for_a_corrupt_state_store() {
    let p = Project::new(
        CUSTOMERS_ONE_WAY,
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    p.run_ok(&[]);
    sync_support::write(
        &p.root().join("state/state.db"),
        &"this is not a database\n".repeat(200),
    );
    for wal in ["state/state.db-wal", "state/state.db-shm"] {
        let _ = std::fs::remove_file(p.root().join(wal));
    }
    let m = p.map_arg();
    expect_usage_error(&p, &["run", "--profile", "test", &m], "state");
    expect_usage_error(&p, &["status", "--profile", "test", &m], "state");
}

#[test]
fn a_corrupt_state_store_is_named_in_the_message() {
    let p = Project::new(
        CUSTOMERS_ONE_WAY,
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    p.run_ok(&[]);
    sync_support::write(
        &p.root().join("state/state.db"),
        &"this is not a database\n".repeat(200),
    );
    for wal in ["state/state.db-wal", "state/state.db-shm"] {
        let _ = std::fs::remove_file(p.root().join(wal));
    }
    let m = p.map_arg();
    expect_usage_error(&p, &["run", "--profile", "test", &m], "state/state.db");
}

#[test]
fn exit_code_1_when_records_failed_and_0_once_they_succeed() {
    let p = Project::new(
        CURRENCY_AND_CUSTOMERS,
        json!({ "Customer": [{ "No.": "C1", "Name": "Alpha", "Currency Code": "EUR" }] }),
        json!({}),
    );
    let o = p.run(&[]);
    assert_eq!(o.code, 1);
    assert_eq!(o.total().failed, 1);
    p.put(
        "bc.Currency",
        json!({ "Code": "EUR", "ISO Code": "EUR", "Description": "Euro" }),
    );
    let o = p.run(&[]);
    assert_eq!(o.code, 0, "{:#}", o.report);
    assert_eq!(o.total().failed, 0);
}

// ---------------------------------------------------------------------------------------------
// Crash safety and concurrent runs.

/// How many customers the crash and lock tests synchronize (enough for a run of many pages).
const MANY: usize = 3000;

/// `n` customers C00001 "Customer 00001"...
fn many_customers(n: usize) -> Value {
    let records: Vec<Value> = (1..=n)
        .map(|i| customer(&format!("C{i:05}"), &format!("Customer {i:05}")))
        .collect();
    json!({ "Customer": records })
}

/// A random number below `n` (the kill delays vary from run to run; each round prints its own).
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % n.max(1)
}

/// Waits until `done` holds; fails after `limit`.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Rows of the state store that answer `sql` (a count); `None` while it cannot be read.
fn state_count(p: &Project, sql: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open_with_flags(
        p.state_db(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    conn.query_row(sql, [], |r| r.get(0)).ok()
}

/// The accounts of Sales by name: name -> how many.
fn accounts_per_name(p: &Project) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for a in p.system("sales").list("account").expect("accounts") {
        let name = a.get("name").as_str().unwrap_or("<null>").to_string();
        *out.entry(name).or_insert(0) += 1;
    }
    out
}

#[test]
fn a_run_killed_mid_way_resumes_without_duplicates_or_failures() {
    let started = Instant::now();
    // The systems are loaded once; each round starts from a copy, with a fresh state.
    let template = Project::new(CUSTOMERS_ONE_WAY, many_customers(MANY), json!({}));
    template.load_systems();
    let mut mid_way = 0;
    let mut log = Vec::new();
    for (round, base) in [20u64, 50, 100, 200, 300, 400, 700].into_iter().enumerate() {
        if round > 0 && started.elapsed() > Duration::from_secs(40) {
            log.push(format!("stopped after {round} rounds (time bound)"));
            break;
        }
        let delay = base + random_below(base / 2 + 1);
        let p = Project::new(CUSTOMERS_ONE_WAY, json!({}), json!({}));
        p.copy_systems_from(&template);
        // Pages of 100: many batches, so the kill can fall between any write and its coupling.
        let full = round % 2 == 1;
        let mut args = vec!["--page-size", "100"];
        if full {
            args.push("--full");
        }
        let mut child = p.spawn_run(&args);
        std::thread::sleep(Duration::from_millis(delay));
        let running = child.try_wait().expect("the run's status").is_none();
        if running {
            child.kill().expect("SIGKILL");
        }
        let status = child.wait().expect("the killed run ends");
        if running {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "round {round}: {status:?}");
        }
        let left = p.system("sales").list("account").expect("accounts").len();
        let pending = state_count(&p, "SELECT COUNT(*) FROM pending_creates");
        if running && 0 < left && left < MANY {
            mid_way += 1;
        }

        // Run again to completion: every customer exactly once in Sales, and coupled.
        let o = p.run_ok(&[]);
        let per_name = accounts_per_name(&p);
        let twice: Vec<_> = per_name.iter().filter(|(_, n)| **n > 1).collect();
        let what = format!(
            "round {round}: {}killed after {delay} ms ({}), {left} accounts and {pending:?} pending creates left",
            if full { "--full " } else { "" },
            if running { "mid-run" } else { "already finished" },
        );
        assert!(
            twice.is_empty(),
            "{what}: duplicated accounts {:?}",
            &twice[..twice.len().min(5)]
        );
        assert_eq!(per_name.len(), MANY, "{what}: accounts missing");
        assert!(
            per_name.keys().all(|n| n.starts_with("Customer ")),
            "{what}"
        );
        assert_eq!(
            p.system("bc").list("Customer").expect("customers").len(),
            MANY
        );
        let c = o.counts("CUST", "->");
        assert_eq!(c.failed, 0, "{what}: {c:?}");
        assert_eq!(
            c.inserted as usize + left,
            MANY,
            "{what}: the second run created {c:?}"
        );
        assert_eq!(p.mapping_status("CUST")["couplings"], MANY, "{what}");
        assert!(p.errors().is_empty(), "{what}: {:#?}", p.errors());
        // And the state is whole: the next run has nothing to do.
        assert_eq!(p.run_ok(&[]).total(), zero(), "{what}");
        log.push(format!("{what}; the second run: {c:?}"));
    }
    for line in &log {
        eprintln!("{line}");
    }
    assert!(
        mid_way > 0,
        "no kill fell in the middle of a run (timing): {log:#?}"
    );
}

#[test]
// Regression: seeds load into a side file that is renamed into place when complete.
fn a_run_killed_while_loading_the_seed_leaves_no_half_loaded_system() {
    let p = Project::new(CUSTOMERS_ONE_WAY, many_customers(MANY), json!({}));
    let mut child = p.spawn_run(&[]);
    let db = p.root().join("state/bc.db");
    wait_until("the seed starts loading", Duration::from_secs(20), || {
        db.exists()
    });
    std::thread::sleep(Duration::from_millis(100));
    let _ = child.kill();
    child.wait().expect("the killed run ends");
    p.run_ok(&[]);
    assert_eq!(
        p.system("bc").list("Customer").expect("customers").len(),
        MANY
    );
    assert_eq!(p.mapping_status("CUST")["couplings"], MANY);
}

#[test]
fn a_run_refuses_to_start_while_the_state_is_locked() {
    let p = Project::new(
        CUSTOMERS_ONE_WAY,
        bc_customers(&[("C1", "Alpha")]),
        json!({}),
    );
    std::fs::create_dir_all(p.root().join("state")).expect("state folder");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p.state_lock())
        .expect("lock file");
    lock.try_lock().expect("the test takes the run lock");
    let m = p.map_arg();
    let out = p.coupler(&["run", "--profile", "test", &m]);
    let err = sync_support::stderr(&out);
    assert_eq!(sync_support::code(&out), 2, "{err}");
    assert!(
        err.contains("another coupler run is using the state") && err.contains("state/state.db"),
        "{err}"
    );
    assert!(p.show("sales.account").is_empty());
    // Reading is not running: status works meanwhile.
    assert_eq!(p.mapping_status("CUST")["couplings"], 0);
    drop(lock);
    assert_eq!(p.run_ok(&[]).counts("CUST", "->").inserted, 1);
}

#[test]
fn a_second_concurrent_run_refuses_with_exit_2_and_the_first_completes() {
    let p = Project::new(CUSTOMERS_ONE_WAY, many_customers(MANY), json!({}));
    p.load_systems();
    // Pages of one record: the first run takes a while.
    let mut first = p.spawn_run(&["--page-size", "1"]);
    wait_until(
        "the first run starts (holds the lock)",
        Duration::from_secs(30),
        || state_count(&p, "SELECT COUNT(*) FROM runs WHERE status = 'running'") == Some(1),
    );
    let m = p.map_arg();
    let out = p.coupler(&["run", "--profile", "test", &m, "--format", "json"]);
    let err = sync_support::stderr(&out);
    let still_running = first.try_wait().expect("the first run's status").is_none();
    assert_eq!(
        sync_support::code(&out),
        2,
        "the second run did not refuse (the first still running: {still_running})\n{err}"
    );
    assert!(
        err.contains("another coupler run is using the state") && err.contains("state/state.db"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let status = first.wait().expect("the first run ends");
    assert!(status.success(), "the first run: {status:?}");
    let per_name = accounts_per_name(&p);
    assert_eq!(per_name.len(), MANY);
    assert!(per_name.values().all(|n| *n == 1));
    assert_eq!(p.mapping_status("CUST")["couplings"], MANY);
    assert!(p.errors().is_empty(), "{:#?}", p.errors());
    // The lock went with the first run.
    assert_eq!(p.run_ok(&[]).total(), zero());
}
