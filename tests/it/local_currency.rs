//! The local currency (issue 13): Business Central has no Currency record for it, a blank
//! "Currency Code" is it; Sales names it as the organization's base currency. `blank is
//! sales.organization.basecurrencyid` in CURRENCY maps one to the other both ways, as Business
//! Central does in code (CRM Synch. Helper FindNewValueForSpecialMapping /
//! FindNAVLocalCurrencyInCRM / GetNavCurrencyCode, microsoft/BCApps
//! src/Layers/W1/BaseApp/Integration/D365Sales/CRMSynchHelper.Codeunit.al @ c3414ede).

use crate::support::sync::{standard_map, Project};
use serde_json::{json, Value};

const BLANK_RULE: &str = "    blank is sales.organization.basecurrencyid\n";

fn bc_seed() -> Value {
    json!({
        "Currency": [{ "Code": "EUR", "ISO Code": "EUR", "Description": "Euro" }],
        "Customer": [
            { "No.": "C1", "Name": "Alpha", "Currency Code": "" },
            { "No.": "C2", "Name": "Beta", "Currency Code": "EUR" }
        ]
    })
}

fn currency_id(p: &Project, iso: &str) -> Value {
    p.find("sales.transactioncurrency", "isocurrencycode", iso)["transactioncurrencyid"].clone()
}

#[test]
fn a_local_currency_customer_gets_the_base_currency_and_the_base_currency_comes_back_blank() {
    let p = Project::standard(bc_seed(), json!({}));
    let o = p.run_ok(&["--select", "+CUSTOMER", "--full"]);
    let c = o.counts("CUSTOMER", "->");
    assert_eq!((c.inserted, c.failed), (2, 0), "{c:?}");
    // The embedded Sales has its organization and base currency (USD) from the start.
    let usd = currency_id(&p, "USD");
    let org = p.show("sales.organization");
    assert_eq!(org.len(), 1, "{org:?}");
    assert_eq!(org[0]["basecurrencyid"], usd);
    let alpha = p.find("sales.account", "name", "Alpha");
    assert_eq!(alpha["transactioncurrencyid"], usd, "{alpha:?}");
    let beta = p.find("sales.account", "name", "Beta");
    assert_eq!(beta["transactioncurrencyid"], currency_id(&p, "EUR"));

    // A Sales user moves Beta to the base currency, and edits Alpha: both come back blank.
    p.put(
        "sales.account",
        json!({ "accountid": beta["accountid"], "transactioncurrencyid": usd }),
    );
    p.put(
        "sales.account",
        json!({ "accountid": alpha["accountid"], "telephone1": "+1 425 555 0101" }),
    );
    let o = p.run_ok(&["--select", "+CUSTOMER"]);
    let c = o.counts("CUSTOMER", "<-");
    assert_eq!((c.modified, c.failed), (2, 0), "{c:?}");
    let c2 = p.find("bc.Customer", "No.", "C2");
    assert_eq!(c2["Currency Code"], "", "{c2:?}");
    let c1 = p.find("bc.Customer", "No.", "C1");
    assert_eq!(
        (c1["Currency Code"].clone(), c1["Phone No."].clone()),
        (json!(""), json!("+1 425 555 0101"))
    );

    // Nothing changed since: the next run writes nothing.
    let o = p.run_ok(&["--select", "+CUSTOMER"]);
    for dir in ["->", "<-"] {
        let c = o.counts("CUSTOMER", dir);
        assert_eq!((c.writes(), c.failed), (0, 0), "CUSTOMER {dir} {c:?}");
    }
}

/// Without the rule a blank code writes no currency and the base currency cannot come back:
/// the defect the rule closes.
#[test]
fn without_the_blank_rule_the_local_currency_is_lost() {
    let map = standard_map();
    assert!(map.contains(BLANK_RULE));
    let p = Project::with_map_text(&map.replace(BLANK_RULE, ""), bc_seed(), json!({}));
    p.run_ok(&["--select", "+CUSTOMER", "--full"]);
    let alpha = p.find("sales.account", "name", "Alpha");
    assert_eq!(alpha["transactioncurrencyid"], Value::Null, "{alpha:?}");

    let usd = currency_id(&p, "USD");
    let beta = p.find("sales.account", "name", "Beta");
    p.put(
        "sales.account",
        json!({ "accountid": beta["accountid"], "transactioncurrencyid": usd }),
    );
    let o = p.run(&["--select", "+CUSTOMER"]);
    assert_eq!(o.counts("CUSTOMER", "<-").failed, 1, "{:#}", o.report);
    assert_eq!(p.find("bc.Customer", "No.", "C2")["Currency Code"], "EUR");
}

/// An organization without a base currency: a blank code has nothing to stand for. The record
/// is a counted failure that says why; nothing is written for it.
#[test]
fn an_organization_without_a_base_currency_fails_the_local_currency_records_with_the_reason() {
    let p = Project::standard(
        bc_seed(),
        json!({ "organization": [{ "basecurrencyid": null }] }),
    );
    let o = p.run(&["--select", "+CUSTOMER", "--full"]);
    let c = o.counts("CUSTOMER", "->");
    assert_eq!((c.inserted, c.failed), (1, 1), "{c:?}");
    assert!(p.show("sales.account").iter().all(|a| a["name"] != "Alpha"));
    let errors = p.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let (kind, message) = (&errors[0]["kind"], errors[0]["message"].to_string());
    assert_eq!(kind, "lookup");
    assert!(
        message.contains("`Currency Code` is blank")
            && message.contains("`sales.organization.basecurrencyid` is empty"),
        "{message}"
    );
}
