use super::nav::Nav;
use crate::transform::Ty;
use indexmap::IndexMap;
use serde::Deserialize;

/// One system's schema catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub system: String,
    pub tables: IndexMap<String, Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Business Central table number.
    #[serde(default)]
    pub id: Option<u32>,
    /// API entity set name (`customers`, `accounts`).
    #[serde(default)]
    pub api: Option<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub key: Vec<String>,
    #[serde(default)]
    pub modified_on: Option<String>,
    #[serde(default)]
    pub modified_by: Option<String>,
    /// Business Central API: the entity set has no modification stamp and refuses reads that
    /// filter on neither its id nor its document (the line pages); this names the `api_ref`
    /// field that holds the document. Changes are read through the documents: the documents
    /// changed since the watermark, then their lines.
    #[serde(default)]
    pub api_read_through: Option<String>,
    /// Business Central API: the OData filter that keeps this table's records out of an entity
    /// set that holds others too (`salesInvoices` lists draft invoices beside the posted ones:
    /// `status ne 'Draft' and status ne 'In_x0020_Review'`). Every collection read adds it.
    #[serde(default)]
    pub api_filter: Option<String>,
    pub fields: IndexMap<String, Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Code,
    Integer,
    Bigint,
    Decimal,
    Boolean,
    Date,
    Datetime,
    Time,
    Duration,
    Dateformula,
    Guid,
    Option,
    Lookup,
    Entityname,
    Blob,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default)]
    pub length: Option<u32>,
    /// Label -> value, in the product's order.
    #[serde(default)]
    pub options: Option<IndexMap<String, i64>>,
    #[serde(default)]
    pub option_set: Option<String>,
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub lookup: Vec<String>,
    #[serde(default)]
    pub api: Option<String>,
    /// Business Central API: where the API has no property for this reference but one for the id
    /// (SystemId) of the record it refers to (`"Document No."` of invoice lines: `documentId`),
    /// that property. The connector translates the code <-> the id through the `lookup:` table.
    /// Boxed: a thin pointer keeps `Field` (held by value in the checker's enums) small.
    #[serde(default)]
    pub api_ref: Option<Box<String>>,
    /// Business Central API: the enum value each option label travels as, where the API's enum
    /// is not the table's (`lineType`: `' '` -> `Comment`, `"G/L Account"` -> `Account`). Labels
    /// not listed travel as their OData name ([`odata_name`]: `' '` -> `_x0020_`).
    #[serde(default)]
    pub api_values: Option<Box<IndexMap<String, String>>>,
    /// Dataverse: the navigation property a reference is written through (`msdyn_Project` for
    /// the column `msdyn_project`), one name or one per `lookup` target. Boxed like `api_ref`.
    #[serde(default)]
    pub nav: Option<Box<Nav>>,
    #[serde(default)]
    pub read_only: bool,
    /// Business Central API: the property is read-only there (`Editable = false` on the API
    /// page), though the table's field is not. Served as a source only on that endpoint.
    #[serde(default)]
    pub api_read_only: bool,
    /// Business Central API: the value the entity set implies for a field it has no property
    /// for (`salesOrders` holds only orders: "Document Type" is `Order`). Read as that value,
    /// filtered on locally, and written only as that value.
    #[serde(default)]
    pub api_constant: Option<Box<String>>,
    /// Dataverse: a date-only column with the UserLocal behaviour, which the Web API holds as
    /// the UTC instant of midnight in the user's time zone (`Edm.DateTimeOffset`). Read and
    /// written as a date in the profile's `time_zone`; never compared by the server.
    #[serde(default)]
    pub user_local: bool,
    /// Business Central API: the property shows the local currency's code where the field is
    /// blank, and takes that code as blank (`currencyCode` of customers, vendors, documents).
    #[serde(default)]
    pub api_local_currency: bool,
    /// Dataverse: valid for create only (`IsValidForUpdate` false: `invoicenumber`, a line's
    /// `isproductoverridden`). Never sent in an update; a changed value fails the record.
    #[serde(default)]
    pub create_only: bool,
    /// Dataverse: valid for update only (`IsValidForCreate` false: an invoice's `totalamount`).
    /// A create sends it in a second request, once the record exists.
    #[serde(default)]
    pub update_only: bool,
}

/// An enum member's name as OData writes it: every character that is not a letter, a digit or
/// `_` as `_xHHHH_` (`' '` -> `_x0020_`, `"In Review"` -> `In_x0020_Review`).
pub fn odata_name(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars() {
        if c.is_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("_x{u:04X}_"));
            }
        }
    }
    out
}

impl Field {
    /// The type the checker sees.
    pub fn ty(&self) -> Ty {
        match self.ty {
            FieldType::Text => Ty::Text { len: self.length },
            FieldType::Code => Ty::Code { len: self.length },
            FieldType::Integer | FieldType::Bigint => Ty::Integer,
            FieldType::Decimal => Ty::Decimal,
            FieldType::Boolean => Ty::Boolean,
            FieldType::Date => Ty::Date,
            FieldType::Datetime => Ty::DateTime,
            FieldType::Time => Ty::Time,
            FieldType::Duration | FieldType::Dateformula => Ty::Text { len: None },
            FieldType::Guid => Ty::Guid,
            FieldType::Option => Ty::Option,
            FieldType::Lookup => Ty::Lookup,
            FieldType::Entityname => Ty::EntityName,
            FieldType::Blob => Ty::Text { len: None },
        }
    }

    /// The option label matching `label`: exactly, or else ignoring case.
    pub fn option_label(&self, label: &str) -> Option<&str> {
        let options = self.options.as_ref()?;
        options
            .keys()
            .find(|k| *k == label)
            .or_else(|| options.keys().find(|k| k.eq_ignore_ascii_case(label)))
            .map(String::as_str)
    }

    /// The API enum value option `label` travels as (see `api_values`).
    pub fn api_value(&self, label: &str) -> String {
        self.api_values
            .as_ref()
            .and_then(|m| m.get(label))
            .cloned()
            .unwrap_or_else(|| odata_name(label))
    }

    /// The option label an API enum value stands for: the first label (in the catalog's
    /// order) that travels as it. None for a value no label travels as.
    pub fn label_of_api_value(&self, value: &str) -> Option<&str> {
        let options = self.options.as_ref()?;
        options
            .keys()
            .find(|l| self.api_value(l) == value)
            .map(String::as_str)
    }

    /// Whether values of this field point at a record of another table (a BC table relation or
    /// a Dataverse lookup).
    pub fn is_reference(&self) -> bool {
        !self.lookup.is_empty() || self.ty == FieldType::Lookup
    }

    /// The navigation property for references to `target` (`nav:`), when the catalog has it.
    pub fn nav_for(&self, target: &str) -> Option<&str> {
        self.nav.as_deref()?.for_target(target)
    }
}

impl Catalog {
    pub fn parse(text: &str) -> Result<Catalog, serde_norway::Error> {
        serde_norway::from_str(text)
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// Problems a loader can see inside the catalog itself (dangling references), as messages.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (tname, table) in &self.tables {
            for k in &table.key {
                if !table.fields.contains_key(k) {
                    problems.push(format!(
                        "table `{tname}`: key field `{k}` is not among its fields"
                    ));
                }
            }
            for (what, f) in [
                ("modified_on", &table.modified_on),
                ("modified_by", &table.modified_by),
            ] {
                if let Some(f) = f {
                    if !table.fields.contains_key(f) {
                        problems.push(format!(
                            "table `{tname}`: {what} field `{f}` is not among its fields"
                        ));
                    }
                }
            }
            for (fname, field) in &table.fields {
                for target in &field.lookup {
                    if !self.tables.contains_key(target) {
                        problems.push(format!(
                            "field `{tname}.{fname}`: lookup target `{target}` is not a table of this catalog"
                        ));
                    }
                }
                if field.api_ref.is_some() && field.lookup.len() != 1 {
                    problems.push(format!(
                        "field `{tname}.{fname}`: `api_ref` needs exactly one `lookup` table (the one whose id the property holds)"
                    ));
                }
                if let Some(nav) = &field.nav {
                    problems.extend(nav.problems(
                        &format!("{tname}.{fname}"),
                        &field.lookup,
                        field.is_reference(),
                    ));
                }
                if field.user_local && field.ty != FieldType::Date {
                    problems.push(format!(
                        "field `{tname}.{fname}`: `user_local` is for `date` columns"
                    ));
                }
                if field.ty == FieldType::Option && field.options.is_none() {
                    problems.push(format!(
                        "field `{tname}.{fname}`: an option field needs `options`"
                    ));
                }
            }
        }
        problems
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn opt_one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    one_or_many(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_ref_needs_one_lookup_table() {
        let text = r#"
system: business_central
tables:
  Header:
    key: "No."
    fields:
      "No.": { type: code, length: 20, api: number }
  Line:
    key: [ "Document No.", "Line No." ]
    fields:
      "Document No.": { type: code, length: 20, lookup: Header, api_ref: documentId }
      "Line No.": { type: integer, api: sequence }
      Other: { type: code, length: 20, api_ref: otherId }
"#;
        let c = Catalog::parse(text).unwrap();
        let line = &c.tables["Line"].fields["Document No."];
        assert_eq!(
            line.api_ref.as_deref().map(String::as_str),
            Some("documentId")
        );
        assert_eq!(line.api, None);
        assert_eq!(
            c.validate(),
            vec!["field `Line.Other`: `api_ref` needs exactly one `lookup` table (the one whose id the property holds)".to_string()]
        );
    }

    #[test]
    fn nav_is_one_name_or_one_per_target() {
        let text = r#"
system: dataverse
tables:
  account:
    key: accountid
    fields:
      accountid: { type: guid }
  contact:
    key: contactid
    fields:
      contactid: { type: guid }
      parentcustomerid: { type: lookup, lookup: [ account, contact ], nav: { account: parentcustomerid_account, contact: parentcustomerid_contact } }
      msdyn_project: { type: lookup, lookup: account, nav: msdyn_Project }
      plain: { type: lookup, lookup: account }
      stray: { type: lookup, lookup: account, nav: { contact: x } }
      notref: { type: integer, nav: y }
"#;
        let c = Catalog::parse(text).unwrap();
        let f = &c.tables["contact"].fields;
        assert_eq!(
            f["parentcustomerid"].nav_for("contact"),
            Some("parentcustomerid_contact")
        );
        assert_eq!(
            f["parentcustomerid"].nav_for("account"),
            Some("parentcustomerid_account")
        );
        assert_eq!(f["msdyn_project"].nav_for("account"), Some("msdyn_Project"));
        assert_eq!(f["plain"].nav_for("account"), None);
        assert_eq!(
            c.validate(),
            vec![
                "field `contact.stray`: `nav` names target `contact`, which is not among its `lookup` targets".to_string(),
                "field `contact.notref`: `nav` is only for reference fields (a `lookup` type or `lookup:` targets)".to_string(),
            ]
        );
        // A list is neither form.
        let bad = text.replace("nav: msdyn_Project", "nav: [ a, b ]");
        assert!(Catalog::parse(&bad).is_err());
    }

    #[test]
    fn shipped_dataverse_catalog_is_valid() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/dynamics-365-sales.yaml"
        );
        let c = Catalog::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(c.validate(), Vec::<String>::new());
    }

    #[test]
    fn shipped_business_central_catalog_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/business-central.yaml");
        let c = Catalog::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(c.validate(), Vec::<String>::new());
    }
}
