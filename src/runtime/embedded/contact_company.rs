//! Business Central gives a new customer or vendor its company contact and the business relation
//! between them (CustCont-Update / VendCont-Update OnInsert, with Marketing Setup's "Bus. Rel.
//! Code for Customers" / "... Vendors"; microsoft/BCApps
//! src/Layers/W1/BaseApp/CRM/BusinessRelation/ContactBusinessRelation.Table.al CreateRelation).
//! A contact created in Sales under an account that became a customer then finds its company.
//! Seeds bring their own contacts and relations, so only writes that are not a seed's do this.

use super::error::Res;
use super::write::Batch;
use super::{id_field, EmbeddedSystem};
use crate::runtime::connector::WriteOp;
use crate::runtime::values::new_guid;
use crate::schema::SystemKind;
use rusqlite::Connection;
use serde_json::{Map, Value};

/// Fields of the customer or vendor the company contact copies (CustCont-Update.InsertNewContact).
const COPIED: [&str; 12] = [
    "Name",
    "Address",
    "Address 2",
    "City",
    "Post Code",
    "Country/Region Code",
    "County",
    "Phone No.",
    "E-Mail",
    "Home Page",
    "Salesperson Code",
    "Currency Code",
];

impl EmbeddedSystem {
    pub(super) fn add_company_contact(
        &self,
        tx: &Connection,
        b: &Batch<'_>,
        values: &Map<String, Value>,
    ) -> Res<()> {
        let (link, code) = match b.table_name {
            "Customer" => ("Customer", "CUST"),
            "Vendor" => ("Vendor", "VEND"),
            _ => return Ok(()),
        };
        let (Some(contact), Some(relation)) = (
            self.catalog.table("Contact"),
            self.catalog.table("Contact Business Relation"),
        ) else {
            return Ok(());
        };
        if self.kind != SystemKind::BusinessCentral || b.trusted {
            return Ok(());
        }
        let Some(no) = values.get("No.").and_then(Value::as_str) else {
            return Ok(());
        };
        let mut fields: Map<String, Value> = COPIED
            .iter()
            .filter(|f| contact.fields.contains_key(**f))
            .filter_map(|f| values.get(*f).map(|v| (f.to_string(), v.clone())))
            .collect();
        fields.insert("Type".into(), Value::String("Company".into()));
        let contact_id = id_field(self.kind, contact);
        let contacts = Batch {
            table: contact,
            table_name: "Contact",
            id_name: &contact_id,
            trusted: true,
            ..*b
        };
        let create = WriteOp::Create {
            id: new_guid(),
            fields,
        };
        let Some((id, written)) = self.apply_one(tx, &contacts, &create)? else {
            return Ok(());
        };
        let contact_no = written.get("No.").cloned().unwrap_or(Value::Null);
        // A company is its own company.
        let mut own = Map::new();
        own.insert("Company No.".into(), contact_no.clone());
        self.apply_one(tx, &contacts, &WriteOp::Update { id, fields: own })?;
        let mut rel = Map::new();
        rel.insert("Contact No.".into(), contact_no);
        rel.insert("Business Relation Code".into(), Value::String(code.into()));
        rel.insert("Link to Table".into(), Value::String(link.into()));
        rel.insert("No.".into(), Value::String(no.to_string()));
        let relation_id = id_field(self.kind, relation);
        let relations = Batch {
            table: relation,
            table_name: "Contact Business Relation",
            id_name: &relation_id,
            trusted: true,
            ..*b
        };
        self.apply_one(
            tx,
            &relations,
            &WriteOp::Create {
                id: new_guid(),
                fields: rel,
            },
        )?;
        Ok(())
    }
}
