//! `coupler couple` / `coupler uncouple`

use super::args::{CoupleArgs, UncoupleArgs};
use super::setup::{self, Stop};
use crate::runtime::engine::reference;
use crate::runtime::state::{tx, Coupling, SideName};

pub fn couple(args: CoupleArgs) -> i32 {
    match execute_couple(args) {
        Ok(code) | Err(Stop(code)) => code,
    }
}

pub fn uncouple(args: UncoupleArgs) -> i32 {
    match execute_uncouple(args) {
        Ok(code) | Err(Stop(code)) => code,
    }
}

fn execute_couple(args: CoupleArgs) -> Result<i32, Stop> {
    let (session, state) = setup::open_locked(&args.profile)?;
    let Some(m) = session.model.mappings.get(&args.mapping) else {
        return Err(setup::fail(format!("unknown mapping `{}`", args.mapping)));
    };
    let (Some(left), Some(right)) = (&m.left, &m.right) else {
        return Err(setup::fail("the mapping is not resolved"));
    };
    let mut refs = Vec::new();
    for (side, id) in [(left, &args.left), (right, &args.right)] {
        let sys = &session.systems[&side.system];
        let found = setup::block_on(sys.read_by_ids(&side.table, std::slice::from_ref(id)))?
            .map_err(setup::fail)?;
        let Some(record) = found.into_iter().next() else {
            return Err(setup::fail(format!("no record `{id}` in `{side}`")));
        };
        let kind = session.model.systems[&side.system].kind;
        let table = session.model.systems[&side.system]
            .table(&side.table)
            .cloned()
            .ok_or_else(|| setup::fail("no table"))?;
        refs.push((
            reference(kind, &table, &record),
            record.modified_on.clone(),
            record.id.clone(),
        ));
    }
    let c = Coupling {
        mapping: m.name.clone(),
        left_id: refs[0].2.clone(),
        right_id: refs[1].2.clone(),
        left_ref: refs[0].0.clone(),
        right_ref: refs[1].0.clone(),
        // No stamps: the next run compares both records and brings them in line.
        left_stamp: None,
        right_stamp: None,
        skipped: false,
        pending: false,
    };
    state
        .transaction(|conn| tx::put_coupling(conn, &c))
        .map_err(setup::fail)?;
    crate::outln!("coupled {} {} <-> {}", m.name, c.left_id, c.right_id);
    Ok(0)
}

fn execute_uncouple(args: UncoupleArgs) -> Result<i32, Stop> {
    let profile = setup::profile(&args.profile.profile, args.profile.config.as_deref())?;
    let state = setup::state(&profile, true)?;
    let (side, id) = match (&args.left, &args.right) {
        (Some(l), _) => (SideName::Left, l),
        (None, Some(r)) => (SideName::Right, r),
        _ => return Err(setup::fail("give --left or --right")),
    };
    if state
        .uncouple(&args.mapping, side, id)
        .map_err(setup::fail)?
    {
        crate::outln!("uncoupled {} {} {id}", args.mapping, side.as_str());
        Ok(0)
    } else {
        Err(setup::fail(format!(
            "no coupling of `{}` has {} id `{id}`",
            args.mapping,
            side.as_str()
        )))
    }
}
