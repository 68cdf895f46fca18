//! Terminal output of runs: progress bars per mapping, dry-run actions, the report table.

use crate::analysis::Arrow;
use crate::runtime::engine::{Action, Leg, MappingReport, Observer, RunReport};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Observes a run: bars on a terminal, actions printed (dry run) or collected (JSON).
pub struct Printer {
    print_actions: bool,
    bars: Option<MultiProgress>,
    active: Mutex<HashMap<(String, Leg), ProgressBar>>,
    actions: Mutex<Vec<Action>>,
}

impl Printer {
    pub fn new(print_actions: bool, bars: bool) -> Printer {
        Printer {
            print_actions,
            bars: bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            active: Mutex::new(HashMap::new()),
            actions: Mutex::new(Vec::new()),
        }
    }

    pub fn clear(&self) {
        if let Some(m) = &self.bars {
            let _ = m.clear();
        }
    }

    pub fn take_actions(&self) -> Vec<Action> {
        std::mem::take(&mut *self.actions.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn key(mapping: &str, leg: Leg) -> (String, Leg) {
    (mapping.to_string(), leg)
}

impl Observer for Printer {
    fn started(&self, mapping: &str, direction: Arrow) {
        if let Some(m) = &self.bars {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("{mapping} {direction}"));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            self.active
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key(mapping, Leg::Pass(direction)), bar);
        }
    }

    fn progress(&self, mapping: &str, direction: Arrow, records: u64) {
        if let Some(bar) = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key(mapping, Leg::Pass(direction)))
        {
            bar.set_message(format!("{mapping} {direction}: {records} records read"));
        }
    }

    fn action(&self, action: &Action) {
        if self.print_actions {
            let line = Progress::action_line(action);
            match &self.bars {
                Some(m) => {
                    let _ = m.println(line);
                }
                None => crate::outln!("{line}"),
            }
        } else {
            self.actions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(action.clone());
        }
    }

    fn finished(&self, report: &MappingReport) {
        if let Some(bar) = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(&report.mapping, report.direction))
        {
            bar.finish_and_clear();
        }
    }
}

pub struct Progress;

impl Progress {
    pub fn action_line(a: &Action) -> String {
        let mut line = format!(
            "{} {} {:<9} {}",
            a.mapping, a.direction, a.kind, a.source_id
        );
        if let Some(t) = &a.target_id {
            let _ = write!(line, " -> {t}");
        }
        for c in &a.changes {
            let _ = write!(line, "\n    {}: {} -> {}", c.field, c.old, c.new);
        }
        if let Some(r) = &a.reason {
            let _ = write!(line, "\n    {r}");
        }
        line
    }

    /// The report per mapping, and a total line.
    pub fn table(report: &RunReport) -> String {
        let mut out = String::new();
        let width = report
            .mappings
            .iter()
            .map(|m| m.mapping.chars().count())
            .max()
            .unwrap_or(7)
            .max(7);
        let title = if report.dry_run {
            "dry run: nothing was written"
        } else {
            "run"
        };
        let _ = writeln!(out, "{title} #{}", report.run_id);
        if let Some(prev) = report.resumed_full {
            let _ = writeln!(
                out,
                "full synchronization: run #{prev} was a full run and did not finish, so this one is full too"
            );
        }
        let _ = writeln!(
            out,
            "{:<width$}  {:<14} {:>8} {:>8} {:>7} {:>9} {:>7} {:>6} {:>7}",
            "mapping",
            "direction",
            "inserted",
            "modified",
            "deleted",
            "unchanged",
            "skipped",
            "failed",
            "coupled"
        );
        for m in &report.mappings {
            let c = &m.counts;
            let _ = write!(
                out,
                "{:<width$}  {:<14} {:>8} {:>8} {:>7} {:>9} {:>7} {:>6} {:>7}",
                m.mapping,
                m.direction,
                c.inserted,
                c.modified,
                c.deleted,
                c.unchanged,
                c.skipped,
                c.failed,
                c.coupled
            );
            if c.conflicts > 0 {
                let _ = write!(out, "  ({} conflicts)", c.conflicts);
            }
            if let Some(n) = &m.note {
                let _ = write!(out, "  ({n})");
            }
            if let Some(e) = &m.error {
                let _ = write!(out, "\n{:<width$}  error: {e}", "");
            }
            out.push('\n');
        }
        let t = report.total();
        let _ = writeln!(
            out,
            "{:<width$}  {:<14} {:>8} {:>8} {:>7} {:>9} {:>7} {:>6} {:>7}",
            "total",
            "",
            t.inserted,
            t.modified,
            t.deleted,
            t.unchanged,
            t.skipped,
            t.failed,
            t.coupled
        );
        if t.failed > 0 {
            let _ = writeln!(
                out,
                "{} records failed: `coupler errors` lists them; they are retried on the next run",
                t.failed
            );
        }
        out
    }
}
