//! `coupler show` and `coupler put`: the records of an embedded system, for exploring the demo.

use super::args::{OutputFormat, PutArgs, ShowArgs, TableArgs};
use super::setup::{self, Stop};
use crate::runtime::connector::Record;
use crate::runtime::embedded::EmbeddedSystem;
use serde_json::{Map, Value};
use std::sync::Arc;

pub fn show(args: ShowArgs) -> i32 {
    match execute_show(args) {
        Ok(code) | Err(Stop(code)) => code,
    }
}

pub fn put(args: PutArgs) -> i32 {
    match execute_put(args) {
        Ok(code) | Err(Stop(code)) => code,
    }
}

fn embedded(t: &TableArgs) -> Result<(Arc<EmbeddedSystem>, String), Stop> {
    let (system, table) = setup::split_target(&t.table)?;
    let session = setup::open_with(&t.paths, &t.profile, t.config.as_deref())?;
    let Some(sys) = session.embedded.get(&system).cloned() else {
        let names: Vec<&String> = session.model.systems.keys().collect();
        return Err(setup::fail(format!(
            "`{system}` is not an embedded system of profile `{}` (systems: {})",
            t.profile,
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if sys.catalog.table(&table).is_none() {
        let hint = crate::diagnostic::suggest::did_you_mean(
            &table,
            sys.catalog.tables.keys().map(String::as_str),
        )
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
        return Err(setup::fail(format!(
            "system `{system}` has no table `{table}`{hint}"
        )));
    }
    Ok((sys, table))
}

fn as_json(r: &Record) -> Value {
    let mut m: Map<String, Value> = r.fields.clone();
    m.insert("@modified_on".into(), Value::String(r.modified_on.clone()));
    m.insert(
        "@modified_by".into(),
        r.modified_by
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    Value::Object(m)
}

fn execute_show(args: ShowArgs) -> Result<i32, Stop> {
    let (sys, table) = embedded(&args.target)?;
    let records = sys.list(&table).map_err(setup::fail)?;
    if args.format == OutputFormat::Json {
        let all: Vec<Value> = records.iter().map(as_json).collect();
        crate::outln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(0);
    }
    let t = sys
        .catalog
        .table(&table)
        .cloned()
        .ok_or_else(|| setup::fail("no table"))?;
    for r in &records {
        let key: Vec<String> = t.key.iter().map(|k| format!("{k}={}", r.get(k))).collect();
        crate::outln!(
            "{}  ({})  modified {} by {}",
            key.join(" "),
            r.id,
            r.modified_on,
            r.modified_by.as_deref().unwrap_or("-")
        );
        for (k, v) in &r.fields {
            if !v.is_null() && v.as_str() != Some("") && !t.key.contains(k) {
                crate::outln!("    {k}: {v}");
            }
        }
    }
    crate::outln!("{} records in {}", records.len(), args.target.table);
    Ok(0)
}

fn execute_put(args: PutArgs) -> Result<i32, Stop> {
    let (sys, table) = embedded(&args.target)?;
    let value: Value = serde_json::from_str(&args.json)
        .map_err(|e| setup::fail(format!("--json is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(setup::fail(
            "--json must be an object of field name -> value",
        ));
    };
    match sys.put(&table, fields, &args.user) {
        Ok(r) => {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&as_json(&r)).unwrap_or_default()
            );
            Ok(0)
        }
        Err(e) => Err(setup::fail(format!("{}: {e}", args.target.table))),
    }
}
