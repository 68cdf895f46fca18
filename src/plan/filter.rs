//! Filters compiled for the endpoints: an OData `$filter` for `dataverse` and `business_central`
//! systems, and the predicate the embedded store evaluates (shown as SQL).

use crate::analysis::{Model, Side, SystemKind};
use crate::syntax::ast::{CmpOp, Expr, LitKind, Literal};
use crate::transform::Ty;
use rust_decimal::Decimal;
use serde::Serialize;

/// A filter with names and option labels resolved against the schema.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Pred {
    And {
        parts: Vec<Pred>,
    },
    Or {
        parts: Vec<Pred>,
    },
    Not {
        inner: Box<Pred>,
    },
    Compare {
        field: Target,
        cmp: Cmp,
        value: FValue,
    },
    In {
        field: Target,
        negated: bool,
        values: Vec<FValue>,
    },
    /// `Code is iso4217`: never pushed down (no API knows the set); coupler evaluates it.
    InSet {
        field: Target,
        negated: bool,
        set: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl From<CmpOp> for Cmp {
    fn from(op: CmpOp) -> Cmp {
        match op {
            CmpOp::Eq => Cmp::Eq,
            CmpOp::Ne => Cmp::Ne,
            CmpOp::Lt => Cmp::Lt,
            CmpOp::Le => Cmp::Le,
            CmpOp::Gt => Cmp::Gt,
            CmpOp::Ge => Cmp::Ge,
        }
    }
}

impl Cmp {
    fn odata(self) -> &'static str {
        match self {
            Cmp::Eq => "eq",
            Cmp::Ne => "ne",
            Cmp::Lt => "lt",
            Cmp::Le => "le",
            Cmp::Gt => "gt",
            Cmp::Ge => "ge",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// The field a comparison reads, with its endpoint name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// The name in the mapping file and schema catalog.
    pub field: String,
    /// The name the endpoint's API uses; None when the API does not expose it.
    pub api: Option<String>,
}

/// A filter value, typed by the field it is compared with.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum FValue {
    Null,
    Bool(bool),
    Number(Decimal),
    Text(String),
    /// An option: its label and the value the system stores; `api`, the enum value Business
    /// Central's API has for it (its `api_values`, or the label's OData name).
    Option {
        label: String,
        value: i64,
        #[serde(skip)]
        api: String,
    },
    Date(String),
    DateTime(String),
    Guid(String),
}

/// Resolves a checked `where` expression against the side's table.
pub fn resolve(model: &Model, side: &Side, expr: &Expr) -> Pred {
    let kind = model.systems.get(&side.system).map(|s| s.kind);
    match expr {
        Expr::Or(parts, _) => Pred::Or {
            parts: parts.iter().map(|p| resolve(model, side, p)).collect(),
        },
        Expr::And(parts, _) => Pred::And {
            parts: parts.iter().map(|p| resolve(model, side, p)).collect(),
        },
        Expr::Not(inner, _) => Pred::Not {
            inner: Box::new(resolve(model, side, inner)),
        },
        Expr::Paren(inner, _) => resolve(model, side, inner),
        Expr::Compare(c) => Pred::Compare {
            field: target(model, side, &c.field.name, kind),
            cmp: c.op.into(),
            value: value(model, side, &c.field.name, &c.value),
        },
        Expr::In(i) => Pred::In {
            field: target(model, side, &i.field.name, kind),
            negated: i.negated,
            values: i
                .values
                .iter()
                .map(|v| value(model, side, &i.field.name, v))
                .collect(),
        },
        Expr::InSet(i) => Pred::InSet {
            field: target(model, side, &i.field.name, kind),
            negated: i.negated,
            set: i.set.name.clone(),
        },
    }
}

/// Business Central's company filter on a Dataverse lookup column: the records of this company
/// and those of no company (CDS Setup Defaults: `CompanyId = <this company>|<empty>`).
pub fn company(column: &str, id: &str) -> Pred {
    let field = Target {
        field: column.to_string(),
        api: Some(format!("_{column}_value")),
    };
    let eq = |value| Pred::Compare {
        field: field.clone(),
        cmp: Cmp::Eq,
        value,
    };
    Pred::Or {
        parts: vec![eq(FValue::Guid(id.to_lowercase())), eq(FValue::Null)],
    }
}

/// `filter` and `also`, both holding.
pub fn both(filter: Option<&Pred>, also: Pred) -> Pred {
    match filter {
        None => also,
        Some(Pred::And { parts }) => {
            let mut parts = parts.clone();
            parts.push(also);
            Pred::And { parts }
        }
        Some(f) => Pred::And {
            parts: vec![f.clone(), also],
        },
    }
}

fn target(model: &Model, side: &Side, field: &str, kind: Option<SystemKind>) -> Target {
    let f = model.field(side, field);
    let api = match kind {
        Some(SystemKind::Dataverse) => match f.map(|f| f.ty()) {
            // Dataverse filters lookups on their value property.
            Some(Ty::Lookup) => Some(format!("_{field}_value")),
            // An entity-name column (`parentcustomeridtype`) is no Web API property: `$filter`
            // on it is a 400. It is read from the lookup's `lookuplogicalname` annotation and
            // compared by coupler.
            Some(Ty::EntityName) => None,
            // A UserLocal date is an instant on the server: a date literal is a 400 there, and
            // the day it stands for depends on the time zone. Compared by coupler.
            _ if f.is_some_and(|f| f.user_local) => None,
            _ => Some(field.to_string()),
        },
        // The API shows the local currency's code where the field is blank (and the property
        // is a page variable, no table field to filter on): compared by coupler.
        _ if f.is_some_and(|f| f.api_local_currency) => None,
        _ => f.and_then(|f| f.api.clone()),
    };
    Target {
        field: field.to_string(),
        api,
    }
}

fn value(model: &Model, side: &Side, field: &str, lit: &Literal) -> FValue {
    let f = model.field(side, field);
    let ty = f.map(|f| f.ty()).unwrap_or(Ty::Any);
    match (&lit.kind, &ty) {
        (LitKind::Null, _) => FValue::Null,
        (LitKind::Str(s), Ty::Option) => {
            let f = f.expect("option type comes from a field");
            let label = f.option_label(s).unwrap_or(s).to_string();
            let value = f
                .options
                .as_ref()
                .and_then(|o| o.get(&label).copied())
                .unwrap_or_default();
            let api = f.api_value(&label);
            FValue::Option { label, value, api }
        }
        (LitKind::Num(_, n), Ty::Option) => {
            let options = f.and_then(|f| f.options.clone()).unwrap_or_default();
            let v = i64::try_from(*n).unwrap_or_default();
            let label = options
                .iter()
                .find(|(_, val)| **val == v)
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            let api = f.map(|f| f.api_value(&label)).unwrap_or_default();
            FValue::Option {
                label,
                value: v,
                api,
            }
        }
        (LitKind::Str(s), Ty::Date) => FValue::Date(s.clone()),
        (LitKind::Str(s), Ty::DateTime) => FValue::DateTime(s.clone()),
        (LitKind::Str(s), Ty::Guid | Ty::Lookup) => {
            FValue::Guid(s.trim_matches(|c| c == '{' || c == '}').to_lowercase())
        }
        (LitKind::Str(s), _) => FValue::Text(s.clone()),
        (LitKind::Num(_, n), _) => FValue::Number(*n),
        (LitKind::Bool(b), _) => FValue::Bool(*b),
    }
}

/// `'it''s'`: OData and SQL both escape a quote by doubling it.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn odata_value(v: &FValue, kind: SystemKind) -> String {
    match v {
        FValue::Null => "null".into(),
        FValue::Bool(b) => b.to_string(),
        FValue::Number(n) => n.normalize().to_string(),
        FValue::Text(s) => quote(s),
        // Dataverse compares choices by value; Business Central's API exposes enums by their
        // API name (`_x0020_` for the blank member, `Comment` for a line's blank type).
        FValue::Option { value, api, .. } => match kind {
            SystemKind::Dataverse => value.to_string(),
            SystemKind::BusinessCentral => quote(api),
        },
        FValue::Date(s) | FValue::DateTime(s) | FValue::Guid(s) => s.clone(),
    }
}

impl Pred {
    /// The OData `$filter` for an endpoint, or None when a field has no API name.
    pub fn to_odata(&self, kind: SystemKind) -> Option<String> {
        Some(match self {
            Pred::And { parts } => join(parts, " and ", kind)?,
            Pred::Or { parts } => join(parts, " or ", kind)?,
            Pred::Not { inner } => format!("not ({})", inner.to_odata(kind)?),
            Pred::Compare { field, cmp, value } => {
                format!(
                    "{} {} {}",
                    field.api.as_ref()?,
                    cmp.odata(),
                    odata_value(value, kind)
                )
            }
            Pred::In {
                field,
                negated,
                values,
            } => {
                let api = field.api.as_ref()?;
                let (op, glue) = if *negated {
                    ("ne", " and ")
                } else {
                    ("eq", " or ")
                };
                let parts: Vec<String> = values
                    .iter()
                    .map(|v| format!("{api} {op} {}", odata_value(v, kind)))
                    .collect();
                format!("({})", parts.join(glue))
            }
            Pred::InSet { .. } => return None,
        })
    }

    /// Splits a top-level conjunction into its value-set tests (each record they leave out is
    /// skipped with the reason) and the rest, the filter proper.
    pub fn split_value_sets(&self) -> (Vec<Pred>, Option<Pred>) {
        let mut parts = Vec::new();
        flatten_and(self, &mut parts);
        let (sets, mut rest): (Vec<Pred>, Vec<Pred>) = parts
            .into_iter()
            .partition(|p| matches!(p, Pred::InSet { .. }));
        let rest = match rest.len() {
            0 => None,
            1 => rest.pop(),
            _ => Some(Pred::And { parts: rest }),
        };
        (sets, rest)
    }

    /// Splits a top-level conjunction into what the endpoint can evaluate and the rest,
    /// which coupler evaluates after reading.
    pub fn split_pushdown(&self, kind: SystemKind) -> (Option<String>, Option<Pred>) {
        let parts = match self {
            Pred::And { parts } => parts.clone(),
            other => vec![other.clone()],
        };
        let mut pushed = Vec::new();
        let mut rest = Vec::new();
        for p in parts {
            match p.to_odata(kind) {
                Some(q) => pushed.push(q),
                None => rest.push(p),
            }
        }
        let pushed = (!pushed.is_empty()).then(|| pushed.join(" and "));
        let rest = match rest.len() {
            0 => None,
            1 => rest.pop(),
            _ => Some(Pred::And { parts: rest }),
        };
        (pushed, rest)
    }

    /// The predicate as the embedded store evaluates it, in SQL. The store keeps values as the
    /// system's API gives them: Dataverse choices by value, Business Central enums by name.
    pub fn to_sql(&self, kind: SystemKind) -> String {
        match self {
            Pred::And { parts } => sql_join(parts, " AND ", kind),
            Pred::Or { parts } => sql_join(parts, " OR ", kind),
            Pred::Not { inner } => format!("NOT ({})", inner.to_sql(kind)),
            Pred::Compare { field, cmp, value } => {
                let col = sql_ident(&field.field);
                match (value, cmp) {
                    (FValue::Null, Cmp::Eq) => format!("{col} IS NULL"),
                    (FValue::Null, _) => format!("{col} IS NOT NULL"),
                    // Blank text and null are the same to the systems ('' = no value).
                    (FValue::Text(t), Cmp::Eq) if t.is_empty() => {
                        format!("({col} IS NULL OR {col} = '')")
                    }
                    (FValue::Text(t), Cmp::Ne) if t.is_empty() => {
                        format!("({col} IS NOT NULL AND {col} <> '')")
                    }
                    // Like OData's `ne`, a missing value differs from any value.
                    (_, Cmp::Ne) => format!("{col} IS NOT {}", sql_value(value, kind)),
                    _ => format!("{col} {} {}", cmp.sql(), sql_value(value, kind)),
                }
            }
            Pred::In {
                field,
                negated,
                values,
            } => {
                let vals: Vec<String> = values
                    .iter()
                    .filter(|v| **v != FValue::Null)
                    .map(|v| sql_value(v, kind))
                    .collect();
                in_sql(
                    &sql_ident(&field.field),
                    &vals,
                    values.contains(&FValue::Null),
                    *negated,
                )
            }
            Pred::InSet {
                field,
                negated,
                set,
            } => {
                let vals: Vec<String> = crate::schema::value_set::find(set)
                    .map(|s| s.values().map(quote).collect())
                    .unwrap_or_default();
                let col = format!("UPPER({})", sql_ident(&field.field));
                in_sql(&col, &vals, false, *negated)
            }
        }
    }

    /// Every field the predicate reads.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Pred::And { parts } | Pred::Or { parts } => {
                parts.iter().for_each(|p| p.collect_fields(out))
            }
            Pred::Not { inner } => inner.collect_fields(out),
            Pred::Compare { field, .. } | Pred::In { field, .. } | Pred::InSet { field, .. } => {
                out.push(&field.field)
            }
        }
    }
}

/// The parts of nested `and`s (parentheses are gone after `resolve`).
fn flatten_and(p: &Pred, out: &mut Vec<Pred>) {
    match p {
        Pred::And { parts } => parts.iter().for_each(|q| flatten_and(q, out)),
        other => out.push(other.clone()),
    }
}

fn join(parts: &[Pred], glue: &str, kind: SystemKind) -> Option<String> {
    let mut out = Vec::new();
    for p in parts {
        let q = p.to_odata(kind)?;
        out.push(if matches!(p, Pred::Or { .. } | Pred::And { .. }) {
            format!("({q})")
        } else {
            q
        });
    }
    Some(out.join(glue))
}

fn sql_join(parts: &[Pred], glue: &str, kind: SystemKind) -> String {
    parts
        .iter()
        .map(|p| match p {
            Pred::Or { .. } | Pred::And { .. } => format!("({})", p.to_sql(kind)),
            _ => p.to_sql(kind),
        })
        .collect::<Vec<_>>()
        .join(glue)
}

/// `IN` with OData's null semantics: `in (null, 'a')` takes missing values; `not in ('a')` does too.
pub fn in_sql(col: &str, values: &[String], has_null: bool, negated: bool) -> String {
    let list = (!values.is_empty()).then(|| values.join(", "));
    match (negated, has_null, list) {
        (false, false, Some(l)) => format!("{col} IN ({l})"),
        (false, true, Some(l)) => format!("({col} IS NULL OR {col} IN ({l}))"),
        (false, true, None) => format!("{col} IS NULL"),
        (true, false, Some(l)) => format!("({col} IS NULL OR {col} NOT IN ({l}))"),
        (true, true, Some(l)) => format!("({col} IS NOT NULL AND {col} NOT IN ({l}))"),
        (true, true, None) => format!("{col} IS NOT NULL"),
        (false, false, None) => "0".into(),
        (true, false, None) => "1".into(),
    }
}

fn sql_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_value(v: &FValue, kind: SystemKind) -> String {
    match v {
        FValue::Option { label, .. } if kind == SystemKind::BusinessCentral => quote(label),
        FValue::Null => "NULL".into(),
        FValue::Bool(b) => if *b { "1" } else { "0" }.into(),
        FValue::Number(n) => n.normalize().to_string(),
        FValue::Option { label, value, .. } => {
            format!("{value} /* {} */", label.replace("*/", "* /"))
        }
        FValue::Text(s) | FValue::Date(s) | FValue::DateTime(s) | FValue::Guid(s) => quote(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: &str, api: &str, value: FValue) -> Pred {
        Pred::Compare {
            field: Target {
                field: field.into(),
                api: Some(api.into()),
            },
            cmp: Cmp::Eq,
            value,
        }
    }

    #[test]
    fn quotes_cannot_escape_a_string() {
        let p = cmp(
            "name",
            "name",
            FValue::Text("x' or 1 eq 1 or name eq '".into()),
        );
        assert_eq!(
            p.to_odata(SystemKind::Dataverse).unwrap(),
            "name eq 'x'' or 1 eq 1 or name eq '''"
        );
        assert_eq!(
            p.to_sql(SystemKind::Dataverse),
            "\"name\" = 'x'' or 1 eq 1 or name eq '''"
        );
    }

    #[test]
    fn options_by_value_for_dataverse_and_by_name_for_business_central() {
        let p = cmp(
            "statecode",
            "statecode",
            FValue::Option {
                label: "Active".into(),
                value: 0,
                api: "Active".into(),
            },
        );
        assert_eq!(p.to_odata(SystemKind::Dataverse).unwrap(), "statecode eq 0");
        assert_eq!(
            p.to_odata(SystemKind::BusinessCentral).unwrap(),
            "statecode eq 'Active'"
        );
    }

    #[test]
    fn the_company_filter_takes_this_company_and_none() {
        let p = both(
            Some(&cmp("name", "name", FValue::Text("A".into()))),
            company("bcbi_companyid", "ABC"),
        );
        assert_eq!(
            p.to_odata(SystemKind::Dataverse).unwrap(),
            "name eq 'A' and (_bcbi_companyid_value eq abc or _bcbi_companyid_value eq null)"
        );
        assert_eq!(
            p.to_sql(SystemKind::Dataverse),
            "\"name\" = 'A' AND (\"bcbi_companyid\" = 'abc' OR \"bcbi_companyid\" IS NULL)"
        );
    }

    #[test]
    fn unexposed_fields_stay_local() {
        let hidden = Pred::Compare {
            field: Target {
                field: "Sales Code".into(),
                api: None,
            },
            cmp: Cmp::Ne,
            value: FValue::Text(String::new()),
        };
        let p = Pred::And {
            parts: vec![
                cmp("Code", "code", FValue::Text("A".into())),
                hidden.clone(),
            ],
        };
        let (pushed, rest) = p.split_pushdown(SystemKind::BusinessCentral);
        assert_eq!(pushed.as_deref(), Some("code eq 'A'"));
        assert_eq!(rest, Some(hidden));
    }
}
