//! What the real systems do on their own when written to: check fields, fill defaults, number
//! new documents, give a new unit group its base unit.

use super::codec::quote_ident;
use super::error::Res;
use super::write::Batch;
use super::{id_field, EmbeddedError, EmbeddedSystem};
use crate::runtime::connector::WriteOp;
use crate::runtime::sql::Cached;
use crate::runtime::values::{new_guid, normalize};
use crate::schema::{FieldType, SystemKind, Table};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

impl EmbeddedSystem {
    /// Validates fields as the real system would: known, writable, of the right type and length.
    pub(super) fn validate(
        &self,
        table: &Table,
        fields: &Map<String, Value>,
        id_name: &str,
        trusted: bool,
    ) -> Res<Map<String, Value>> {
        let mut out = Map::new();
        for (name, value) in fields {
            let field = table
                .fields
                .get(name)
                .ok_or_else(|| EmbeddedError::UnknownField(name.clone()))?;
            if name == id_name {
                continue;
            }
            if field.read_only && !trusted && Some(name) != table.modified_on.as_ref() {
                return Err(EmbeddedError::ReadOnly(name.clone()));
            }
            out.insert(name.clone(), normalize(name, field, value)?);
        }
        Ok(out)
    }

    /// Dataverse refuses a currency whose `isocurrencycode` is no ISO currency code (the
    /// Currency form offers only its list; the Web API rejects others on create). The list kept
    /// here is ISO 4217 (`schemas/value-sets/iso4217.txt`).
    pub(super) fn check_currency_code(
        &self,
        b: &Batch<'_>,
        values: &Map<String, Value>,
    ) -> Res<()> {
        if self.kind != SystemKind::Dataverse || b.table_name != "transactioncurrency" {
            return Ok(());
        }
        let code = values
            .get("isocurrencycode")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let iso = crate::schema::value_set::find("iso4217");
        if iso.is_some_and(|s| s.contains(code)) {
            return Ok(());
        }
        Err(EmbeddedError::UnknownCurrencyCode(code.to_string()))
    }

    /// A number from the table's number series for a missing Business Central primary key.
    pub(super) fn next_number(
        conn: &Connection,
        table_name: &str,
        key: &str,
        len: Option<u32>,
    ) -> Res<String> {
        let prefix: String = table_name
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .take(4)
            .collect::<String>()
            .to_uppercase();
        let n: i64 = conn.one(
            &format!("SELECT COUNT(*) FROM {}", quote_ident(table_name)),
            [],
            |r| r.get(0),
        )?;
        let width = len
            .map(|l| (l as usize).saturating_sub(prefix.len()).clamp(1, 6))
            .unwrap_or(5);
        for i in (n + 1).. {
            let candidate = format!("{prefix}{i:0width$}");
            let taken: Option<i64> = conn
                .one(
                    &format!(
                        "SELECT 1 FROM {} WHERE {} = ?1",
                        quote_ident(table_name),
                        quote_ident(key)
                    ),
                    [&candidate],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_none() {
                return Ok(candidate);
            }
        }
        unreachable!("an unbounded range always yields a free number")
    }

    /// What the real system fills in on create: Business Central options start at their first
    /// value (ordinal 0), Dataverse records are created active.
    pub(super) fn defaults(&self, table: &Table, values: &mut Map<String, Value>) {
        for (name, field) in &table.fields {
            if values.get(name).is_some_and(|v| !v.is_null()) || field.read_only {
                continue;
            }
            // Yes/no fields start as no, on both systems; Business Central numbers start at 0.
            match (field.ty, self.kind) {
                (FieldType::Boolean, _) => {
                    values.insert(name.clone(), Value::Bool(false));
                    continue;
                }
                (
                    FieldType::Integer | FieldType::Bigint | FieldType::Decimal,
                    SystemKind::BusinessCentral,
                ) => {
                    values.insert(name.clone(), Value::from(0));
                    continue;
                }
                (FieldType::Option, _) => {}
                _ => continue,
            }
            let applies = match self.kind {
                SystemKind::BusinessCentral => true,
                SystemKind::Dataverse => name == "statecode",
            };
            let zero = field
                .options
                .as_ref()
                .and_then(|o| o.iter().find(|(_, v)| **v == 0).map(|(l, _)| l.clone()));
            if let (true, Some(label)) = (applies, zero) {
                values.insert(name.clone(), Value::String(label));
            }
        }
    }

    /// What the real system does on its own after a create: Dataverse gives a new unit group
    /// its base unit, named by `baseuomname`.
    pub(super) fn after_create(
        &self,
        tx: &Connection,
        b: &Batch<'_>,
        id: &str,
        values: &Map<String, Value>,
    ) -> Res<()> {
        self.add_company_contact(tx, b, values)?;
        if self.kind != SystemKind::Dataverse || b.table_name != "uomschedule" {
            return Ok(());
        }
        let Some(uom) = self.catalog.table("uom") else {
            return Ok(());
        };
        let base = values
            .get("baseuomname")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if base.is_empty() {
            return Err(EmbeddedError::UnitGroupWithoutBase);
        }
        let mut unit = Map::new();
        unit.insert("name".into(), Value::String(base.to_string()));
        unit.insert("uomscheduleid".into(), Value::String(id.to_string()));
        unit.insert("quantity".into(), Value::from(1));
        unit.insert("isschedulebaseuom".into(), Value::Bool(true));
        let unit_id = new_guid();
        let op = WriteOp::Create {
            id: unit_id.clone(),
            fields: unit,
        };
        let uom_id = id_field(self.kind, uom);
        let units = Batch {
            table: uom,
            table_name: "uom",
            id_name: &uom_id,
            trusted: true,
            ..*b
        };
        self.apply_one(tx, &units, &op)?;
        // The base unit is its own base.
        tx.exec(
            "UPDATE \"uom\" SET \"baseuom\" = ?1 WHERE \"uomid\" = ?1",
            [&unit_id],
        )?;
        Ok(())
    }
}
