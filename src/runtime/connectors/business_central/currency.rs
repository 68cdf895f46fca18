//! The local currency. Business Central stores a customer's, vendor's or document's "Currency
//! Code" blank when it is the local currency, but the API shows the local currency's code there
//! (General Ledger Setup's LCY Code; `api_local_currency:` in the catalog), and takes that code
//! back as blank. coupler's records keep Business Central's own value: the code read is turned
//! back into blank, with the code `companyInformation.currencyCode` gives, read once.

use super::{Api, BusinessCentral};
use crate::runtime::connector::{ConnectorError, Record};
use crate::runtime::connectors::odata;
use serde_json::Value;

impl BusinessCentral {
    /// The local currency's code, when `a` has a field that shows it (else no request).
    pub(super) async fn local_currency(&self, a: &Api<'_>) -> Result<Option<&str>, ConnectorError> {
        if !a.table.fields.values().any(|f| f.api_local_currency) {
            return Ok(None);
        }
        let code = self
            .lcy
            .get_or_try_init(|| async {
                let url = self
                    .entity_url("companyInformation", None, &[("$select", "currencyCode".into())])
                    .await?;
                let rows = odata::rows(&self.get_json(url).await?.0);
                match rows.first().and_then(|r| r.get("currencyCode")) {
                    Some(Value::String(c)) if !c.trim().is_empty() => Ok(c.trim().to_uppercase()),
                    _ => Err(self.err(
                        "companyInformation has no currencyCode: the local currency is unknown, so a blank currency code cannot be told from it",
                    )),
                }
            })
            .await?;
        Ok(Some(code.as_str()))
    }

    /// The local currency's code in `records` (decoded from the API) back to blank.
    pub(super) async fn blank_local_currency(
        &self,
        a: &Api<'_>,
        records: &mut [Record],
    ) -> Result<(), ConnectorError> {
        let fields: Vec<&String> = a
            .table
            .fields
            .iter()
            .filter(|(_, f)| f.api_local_currency)
            .map(|(n, _)| n)
            .collect();
        // No request when no record shows a code (a read with nothing new costs nothing more).
        let shown = |r: &Record| {
            fields.iter().any(|n| {
                r.fields
                    .get(*n)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            })
        };
        if !records.iter().any(shown) {
            return Ok(());
        }
        let Some(lcy) = self.local_currency(a).await? else {
            return Ok(());
        };
        for name in fields {
            for r in records.iter_mut() {
                if let Some(Value::String(s)) = r.fields.get_mut(name) {
                    if s.eq_ignore_ascii_case(lcy) {
                        s.clear();
                    }
                }
            }
        }
        Ok(())
    }
}
