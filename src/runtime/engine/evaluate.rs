//! Computing the target values of one source record: constants, `via` lookups through
//! couplings, transforms, modifiers, and the target field's own type and length rules.

use super::compile::{Direction, Step, StepSource};
use super::error::{EngineError, Res};
use crate::analysis::SystemKind;
use crate::plan::direction::LookupTarget;
use crate::runtime::connector::Record;
use crate::runtime::state::{SideName, StateStore};
use crate::runtime::values::normalize;
use crate::schema::Table;
use crate::transform::Value as TValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// Resolves references through the couplings of other mappings, with a cache per run.
pub struct Lookups<'a> {
    pub state: &'a StateStore,
    /// The `via` mappings, as the plan resolved them.
    pub targets: &'a HashMap<String, LookupTarget>,
    cache: Mutex<HashMap<(String, String, String), Option<String>>>,
    /// In a dry run: the couplings the run would have made, so later lookups see them.
    planned: Mutex<HashMap<(String, SideName, String), String>>,
    /// What a blank key stands for, per mapping with `blank is` (read at the run's start).
    pub blanks: super::blank::Blanks,
    /// The rows each `through` clause exchanges values through (read at the run's start).
    throughs: Mutex<super::through::Throughs>,
}

impl<'a> Lookups<'a> {
    pub fn new(state: &'a StateStore, targets: &'a HashMap<String, LookupTarget>) -> Lookups<'a> {
        Lookups {
            state,
            targets,
            cache: Mutex::new(HashMap::new()),
            planned: Mutex::new(HashMap::new()),
            blanks: Default::default(),
            throughs: Default::default(),
        }
    }

    pub fn with_blanks(self, blanks: super::blank::Blanks) -> Self {
        Lookups { blanks, ..self }
    }

    /// The rows of `through` clauses a pass read at its start (replacing older reads).
    pub fn set_throughs(&self, fresh: super::through::Throughs) {
        self.throughs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(fresh);
    }

    fn exchange(
        &self,
        t: &crate::plan::direction::ThroughRef,
        value: &Value,
        forward: bool,
        field: &str,
    ) -> Res<Value> {
        let throughs = self.throughs.lock().unwrap_or_else(|p| p.into_inner());
        super::through::exchange(&throughs, t, value, forward, field)
    }

    /// Whether `system` holds the option set of option mapping `mapping`.
    pub fn is_option_side(&self, mapping: &str, system: &str) -> bool {
        self.targets
            .get(mapping)
            .is_some_and(|t| t.option_system.as_deref() == Some(system))
    }

    pub fn is_options(&self, mapping: &str) -> bool {
        self.targets
            .get(mapping)
            .is_some_and(LookupTarget::is_options)
    }

    /// Records a coupling a dry run would have made: `reference` on `side` <-> `other` opposite.
    pub fn plan_coupling(&self, mapping: &str, side: SideName, reference: &str, other: &str) {
        let mut planned = self.planned.lock().unwrap_or_else(|p| p.into_inner());
        planned.insert(
            (mapping.to_string(), side, reference.to_string()),
            other.to_string(),
        );
        planned.insert(
            (mapping.to_string(), side.other(), other.to_string()),
            reference.to_string(),
        );
    }

    /// Whether `reference` on `system`'s side of `via` is a coupling only a dry run made (its
    /// record does not exist yet, so nothing can be read about it).
    fn is_planned(&self, via: &str, system: &str, reference: &str) -> bool {
        let Some(m) = self.targets.get(via) else {
            return false;
        };
        let planned = self.planned.lock().unwrap_or_else(|p| p.into_inner());
        planned.contains_key(&(via.to_string(), m.side_of(system), reference.to_string()))
    }

    /// Forgets cached lookups of a mapping whose couplings changed.
    pub fn invalidate(&self, mapping: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| k.0 != mapping);
    }

    /// The reference on the other side of `via` for `reference` on `from_system`.
    pub fn resolve(&self, via: &str, from_system: &str, reference: &str) -> Res<Option<String>> {
        let key = (
            via.to_string(),
            from_system.to_string(),
            reference.to_string(),
        );
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(hit.clone());
        }
        let m = self
            .targets
            .get(via)
            .ok_or_else(|| EngineError::UnknownMapping(via.to_string()))?;
        let side = m.side_of(from_system);
        // Business Central codes are upper-case; option labels match ignoring case.
        let mut found = self.state.coupling_by_ref(via, side, reference)?;
        if found.is_none() && m.is_options() {
            found = self.state.couplings(via)?.into_iter().find(|c| {
                !c.pending
                    && c.reference(side)
                        .is_some_and(|r| r.eq_ignore_ascii_case(reference))
            });
        }
        let out = found
            .and_then(|c| c.reference(side.other()).map(str::to_string))
            .or_else(|| {
                let planned = self.planned.lock().unwrap_or_else(|p| p.into_inner());
                planned
                    .get(&(via.to_string(), side, reference.to_string()))
                    .cloned()
            });
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, out.clone());
        Ok(out)
    }
}

/// How a record is referenced by others: Dataverse by its id, Business Central by its primary
/// key's last field. The other fields of a composite key are what the referring record carries
/// itself, as in Business Central's table relations: a Sales Line names its header by
/// "Document No." and has its own "Document Type".
pub fn reference(kind: SystemKind, table: &Table, record: &Record) -> Option<String> {
    match kind {
        SystemKind::Dataverse => Some(record.id.clone()),
        SystemKind::BusinessCentral => table.key.last().and_then(|k| ref_text(record.get(k))),
    }
}

/// Why a record's values could not be computed.
#[derive(Debug)]
pub enum EvalError {
    Fail(EngineError),
    /// A `[parent]` lookup found no coupled record: the record waits for its parent.
    Wait {
        via: String,
        field: String,
        reference: String,
    },
}

impl EvalError {
    /// The error a record that cannot wait fails with (a split's extra records).
    pub fn into_error(self) -> EngineError {
        match self {
            EvalError::Fail(e) => e,
            EvalError::Wait {
                via,
                field,
                reference,
            } => EngineError::AwaitsParent {
                field,
                reference,
                via,
            },
        }
    }
}

impl From<EngineError> for EvalError {
    fn from(e: EngineError) -> EvalError {
        EvalError::Fail(e)
    }
}

fn ref_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Target values for one record: the steps that are (or are not) deferred.
pub fn evaluate(
    dir: &Direction,
    record: &Record,
    lookups: &Lookups<'_>,
    target: &Table,
    deferred: bool,
) -> Result<Map<String, Value>, EvalError> {
    // A conditional line replaces the unconditional one for its field, deferred or not: the
    // override is decided over all steps, so a deferred patch cannot undo it.
    let overridden = overridden(&dir.steps, record);
    let steps: Vec<&Step> = dir
        .steps
        .iter()
        .filter(|s| s.deferred == deferred)
        .collect();
    let mut out = evaluate_steps(dir, &steps, &overridden, record, lookups, target)?;
    // A split text: its first part stays on the main record.
    if let (Some(split), false) = (&dir.split, deferred) {
        let first = super::text::parts(&super::text::text_of(record, split), split.length)
            .into_iter()
            .next()
            .map_or(Value::Null, Value::String);
        let field = target
            .fields
            .get(&split.into)
            .ok_or_else(|| EngineError::UnknownField {
                field: split.into.clone(),
                table: dir.target_side.table.clone(),
            })?;
        let first = normalize(&split.into, field, &first).map_err(EngineError::from)?;
        out.insert(split.into.clone(), first);
    }
    Ok(out)
}

fn applies(s: &Step, record: &Record) -> bool {
    s.condition
        .as_ref()
        .is_none_or(|c| crate::runtime::filter_eval::matches(c, record))
}

/// The target fields a `fields when` step that applies to `record` writes.
pub fn overridden<'s>(steps: &'s [Step], record: &Record) -> Vec<&'s str> {
    steps
        .iter()
        .filter(|s| s.condition.is_some() && applies(s, record))
        .map(|s| s.target.as_str())
        .collect()
}

/// The values of `steps` for one record. A step of a `fields when` block applies when its
/// condition holds, and then replaces the unconditional step for the same target field
/// (`overridden`).
pub fn evaluate_steps(
    dir: &Direction,
    steps: &[&Step],
    overridden: &[&str],
    record: &Record,
    lookups: &Lookups<'_>,
    target: &Table,
) -> Result<Map<String, Value>, EvalError> {
    let applies = |s: &Step| applies(s, record);
    let mut out = Map::new();
    for step in steps.iter().copied().filter(|s| {
        applies(s) && (s.condition.is_some() || !overridden.contains(&s.target.as_str()))
    }) {
        let (mut value, source_name) = match &step.source {
            StepSource::Field(f) => (record.get(f).clone(), f.as_str()),
            StepSource::Const(v) => (v.clone(), "constant"),
        };
        // `through`, read side: the value is exchanged before it is looked up.
        let through = step.through.as_deref();
        if let Some(t) = through.filter(|t| t.system == dir.source_side.system) {
            value = lookups
                .exchange(t, &value, true, source_name)
                .map_err(EvalError::Fail)?;
        }
        let blank = match &step.via {
            Some(via) => super::blank::through(
                &lookups.blanks,
                via,
                lookups.targets.get(via),
                &dir.source_side.system,
                &value,
                source_name,
            )?,
            None => None,
        };
        if let Some(v) = blank {
            value = v;
        } else if let Some(via) = &step.via {
            // A blank option cannot name a code: it must not clear a code that simply has no
            // option (Business Central keeps such codes; Sales shows the option blank).
            if value.is_null() && lookups.is_option_side(via, &dir.source_side.system) {
                continue;
            }
            if let Some(reference) = ref_text(&value) {
                match lookups.resolve(via, &dir.source_side.system, &reference)? {
                    // `through`, written side: what the lookup gave is exchanged back.
                    Some(r) => match through.filter(|t| t.system == dir.target_side.system) {
                        // A dry run's predicted record: it has no row to exchange it through yet.
                        Some(_) if lookups.is_planned(via, &dir.target_side.system, &r) => {
                            value = Value::String(r)
                        }
                        Some(t) => {
                            value = lookups
                                .exchange(t, &Value::String(r), false, source_name)
                                .map_err(EvalError::Fail)?
                        }
                        None => value = Value::String(r),
                    },
                    None if step.clear_on_fail => value = Value::Null,
                    // A code with no matching option leaves the option blank (Business Central's rule).
                    None if lookups.is_options(via) => value = Value::Null,
                    None if step.parent => {
                        return Err(EvalError::Wait {
                            via: via.clone(),
                            field: source_name.to_string(),
                            reference,
                        })
                    }
                    None => {
                        return Err(EvalError::Fail(EngineError::NotCoupled {
                            field: source_name.to_string(),
                            reference,
                            via: via.clone(),
                        }))
                    }
                }
            } else {
                value = Value::Null;
            }
        }
        for f in step.transforms.iter() {
            value = f
                .apply(TValue::from_json(&value))
                .map_err(|message| EngineError::Transform {
                    function: f.name().to_string(),
                    field: source_name.to_string(),
                    message,
                })?
                .to_json();
        }
        if value.is_null() && step.not_null {
            continue;
        }
        let field = target
            .fields
            .get(&step.target)
            .ok_or_else(|| EngineError::UnknownField {
                field: step.target.clone(),
                table: dir.target_side.table.clone(),
            })?;
        let value =
            normalize(&step.target, field, &value).map_err(|source| EngineError::FieldValue {
                from: source_name.to_string(),
                to: step.target.clone(),
                source,
            })?;
        out.insert(step.target.clone(), value);
    }
    Ok(out)
}

/// Fields of `wanted` whose value differs from the record's current one.
pub fn changed_fields(wanted: &Map<String, Value>, current: &Record) -> Map<String, Value> {
    wanted
        .iter()
        .filter(|(k, v)| !crate::runtime::values::same(v, current.get(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
