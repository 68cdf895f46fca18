//! Contact <-> company (issue 13): a Business Central person's "Company No." is a company
//! contact; its Contact Business Relation to a customer names the customer coupled to the Sales
//! account that is the contact's parent (CRM Synch. Helper SetContactParentCompany /
//! FindContactByAccountId, microsoft/BCApps
//! src/Layers/W1/BaseApp/Integration/D365Sales/CRMSynchHelper.Codeunit.al). The standard set
//! says it with `through bc."Contact Business Relation"(...)`. Without it the Sales contact has
//! no parent, falls outside CONTACT's own `where sales`, and its later edits are never read.

use crate::support::sync::{standard_map, Project};
use serde_json::{json, Value};

const THROUGH: &str = r#" through bc."Contact Business Relation"("Contact No." -> "No." where "Link to Table" == 'Customer')"#;

fn company(no: &str, name: &str) -> Value {
    json!({ "No.": no, "Type": "Company", "Name": name, "Company No.": no, "Company Name": name })
}

fn relation(contact: &str, customer: &str) -> Value {
    json!({ "Contact No.": contact, "Business Relation Code": "CUST",
            "Link to Table": "Customer", "No.": customer })
}

/// Two customers with their company contacts, a person at the first, and one at a company that
/// is no customer (no business relation).
fn bc_seed() -> Value {
    json!({
        "Customer": [{ "No.": "C1", "Name": "Alpha" }, { "No.": "C2", "Name": "Beta" }],
        "Contact": [
            company("CT1", "Alpha"),
            company("CT2", "Beta"),
            company("CT3", "Gamma"),
            { "No.": "CT11", "Type": "Person", "Surname": "Ames", "Company No.": "CT1" },
            { "No.": "CT31", "Type": "Person", "Surname": "Gale", "Company No.": "CT3" }
        ],
        "Contact Business Relation": [relation("CT1", "C1"), relation("CT2", "C2")]
    })
}

fn account_id(p: &Project, name: &str) -> Value {
    p.find("sales.account", "name", name)["accountid"].clone()
}

#[test]
fn a_contact_gets_its_company_s_account_and_its_sales_edits_come_back() {
    let p = Project::standard(bc_seed(), json!({}));
    let o = p.run(&["--select", "+CONTACT", "--full"]);
    let c = o.counts("CONTACT", "->");
    assert_eq!((c.inserted, c.failed), (1, 1), "{c:?}");
    let ames = p.find("sales.contact", "lastname", "Ames");
    assert_eq!(
        ames["parentcustomerid"],
        account_id(&p, "Alpha"),
        "{ames:?}"
    );
    assert_eq!(ames["parentcustomeridtype"], "account");

    // A Sales user edits the contact: the edit is read (the contact is in CONTACT's filter).
    p.put(
        "sales.contact",
        json!({ "contactid": ames["contactid"], "telephone1": "+1 425 555 0199" }),
    );
    p.run(&["--select", "+CONTACT"]);
    assert_eq!(
        p.find("bc.Contact", "No.", "CT11")["Phone No."],
        "+1 425 555 0199"
    );

    // ... and moves it to Beta's account: its company becomes Beta's company contact.
    p.put(
        "sales.contact",
        json!({ "contactid": ames["contactid"], "parentcustomerid": account_id(&p, "Beta"),
                "parentcustomeridtype": "account" }),
    );
    let o = p.run(&["--select", "+CONTACT"]);
    assert_eq!(o.counts("CONTACT", "<-").modified, 1, "{:#}", o.report);
    assert_eq!(p.find("bc.Contact", "No.", "CT11")["Company No."], "CT2");
}

#[test]
fn a_contact_whose_company_is_no_customer_is_a_failure_that_says_why() {
    let p = Project::standard(bc_seed(), json!({}));
    p.run(&["--select", "+CONTACT", "--full"]);
    assert!(p
        .show("sales.contact")
        .iter()
        .all(|c| c["lastname"] != "Gale"));
    let errors = p.errors();
    let gale: Vec<_> = errors
        .iter()
        .filter(|e| e["mapping"] == "CONTACT")
        .collect();
    assert_eq!(gale.len(), 1, "{errors:#?}");
    let message = gale[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`Company No.` = `CT3`")
            && message.contains("no row of `bc.Contact Business Relation` has this `Contact No.`"),
        "{message}"
    );
    assert_eq!(gale[0]["kind"], "lookup");
}

/// Without `through` (the standard set before it): the contact is created without a parent,
/// outside CONTACT's `where sales`, and a later Sales edit is silently never read.
#[test]
fn without_through_a_created_contact_falls_outside_the_filter_and_its_edits_are_lost() {
    let map = standard_map();
    let line =
        format!("        \"Company No.\"         <-> parentcustomerid via CUSTOMER{THROUGH}\n");
    assert!(map.contains(&line), "the standard CONTACT line changed");
    let p = Project::with_map_text(&map.replace(&line, ""), bc_seed(), json!({}));
    p.run(&["--select", "+CONTACT", "--full"]);
    let ames = p.find("sales.contact", "lastname", "Ames");
    assert_eq!(ames["parentcustomerid"], Value::Null);
    p.put(
        "sales.contact",
        json!({ "contactid": ames["contactid"], "telephone1": "+1 425 555 0199" }),
    );
    p.run(&["--select", "+CONTACT"]);
    assert_ne!(
        p.find("bc.Contact", "No.", "CT11")["Phone No."],
        "+1 425 555 0199"
    );
}

/// A customer created in Business Central from a Sales account gets its company contact and the
/// business relation (CustCont-Update), so a Sales contact of that account finds its company.
#[test]
fn a_contact_of_an_account_created_in_sales_lands_under_the_new_customer_s_company() {
    let account = "e2227830-77fd-5b05-b29c-7dc7f7b16d3d";
    let p = Project::standard(
        json!({}),
        json!({
            "account": [{ "accountid": account, "name": "Delta",
                          "customertypecode": "Customer", "statecode": "Active" }],
            "contact": [{ "lastname": "Dunn", "statecode": "Active",
                          "parentcustomeridtype": "account", "parentcustomerid": account }]
        }),
    );
    let o = p.run_ok(&["--select", "+CONTACT", "--full"]);
    assert_eq!(o.counts("CUSTOMER", "<-").inserted, 1, "{:#}", o.report);
    let c = o.counts("CONTACT", "<-");
    assert_eq!((c.inserted, c.failed), (1, 0), "{c:?}");
    let customer = p.find("bc.Customer", "Name", "Delta");
    let company = p.find("bc.Contact", "Name", "Delta");
    assert_eq!(
        (company["Type"].clone(), company["Company No."].clone()),
        (json!("Company"), company["No."].clone())
    );
    let relations = p.show("bc.\"Contact Business Relation\"");
    assert_eq!(relations.len(), 1, "{relations:?}");
    assert_eq!(
        (
            relations[0]["Contact No."].clone(),
            relations[0]["No."].clone()
        ),
        (company["No."].clone(), customer["No."].clone())
    );
    assert_eq!(
        p.find("bc.Contact", "Surname", "Dunn")["Company No."],
        company["No."]
    );
}
