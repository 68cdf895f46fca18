//! An embedded Dataverse has its organization row, as every real environment does (the
//! organization table has no Create message: it comes with the environment, with its base
//! currency). A seed may give the row; when it does not, a new database gets one whose base
//! currency is the seed's currency at exchange rate 1 (the base currency's own rate), or a
//! new US Dollar when the seed has no currency.

use super::error::Res;
use super::EmbeddedSystem;
use crate::schema::SystemKind;
use serde_json::{json, Map, Value};

impl EmbeddedSystem {
    pub(super) fn provision_organization(&self) -> Res<()> {
        let has = |t: &str| self.catalog.table(t).is_some();
        if self.kind != SystemKind::Dataverse || !has("organization") || !has("transactioncurrency")
        {
            return Ok(());
        }
        if !self.list("organization")?.is_empty() {
            return Ok(());
        }
        let currencies = self.list("transactioncurrency")?;
        let at_par = currencies
            .iter()
            .find(|c| c.get("exchangerate").as_f64() == Some(1.0))
            .or(currencies.first());
        let base = match at_par {
            Some(c) => c.id.clone(),
            None => {
                self.put_as("transactioncurrency", us_dollar(), "seed", true)?
                    .id
            }
        };
        let mut org = Map::new();
        org.insert("basecurrencyid".into(), Value::String(base));
        self.put_as("organization", org, "seed", true)?;
        Ok(())
    }
}

fn us_dollar() -> Map<String, Value> {
    let v = json!({
        "isocurrencycode": "USD", "currencyname": "US Dollar", "currencysymbol": "$",
        "exchangerate": 1.0, "currencyprecision": 2, "statecode": "Active", "statuscode": "Active"
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
