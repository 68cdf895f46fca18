//! The mapping-level decisions the checker resolved, as the analysis's own enums: the plan and
//! the runtime read these, never the AST's. Converted from the AST here, in one place.

use crate::syntax::ast;
use serde::Serialize;

/// Which way a mapping (or a field line) synchronizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Arrow {
    #[serde(rename = "->")]
    Forward,
    #[serde(rename = "<-")]
    Backward,
    #[serde(rename = "<->")]
    Both,
}

impl Arrow {
    pub fn as_str(self) -> &'static str {
        match self {
            Arrow::Forward => "->",
            Arrow::Backward => "<-",
            Arrow::Both => "<->",
        }
    }

    pub fn flows_forward(self) -> bool {
        matches!(self, Arrow::Forward | Arrow::Both)
    }

    pub fn flows_backward(self) -> bool {
        matches!(self, Arrow::Backward | Arrow::Both)
    }
}

impl std::str::FromStr for Arrow {
    type Err = UnknownArrow;

    /// The arrow as the state store keeps it (`as_str`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Arrow::Forward, Arrow::Backward, Arrow::Both]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownArrow(s.to_string()))
    }
}

/// A direction text that is none of `->`, `<-`, `<->`.
#[derive(Debug, thiserror::Error)]
#[error("unknown direction `{0}`")]
pub struct UnknownArrow(pub String);

impl From<ast::Direction> for Arrow {
    fn from(d: ast::Direction) -> Self {
        match d {
            ast::Direction::Forward => Arrow::Forward,
            ast::Direction::Backward => Arrow::Backward,
            ast::Direction::Both => Arrow::Both,
        }
    }
}

/// What to do with a source record that has no coupled target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    Create,
    Skip,
}

impl MissingPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            MissingPolicy::Create => "create",
            MissingPolicy::Skip => "skip",
        }
    }
}

/// What to do when a coupled record was deleted on one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletePolicy {
    Restore,
    Uncouple,
    Ignore,
}

impl DeletePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletePolicy::Restore => "restore",
            DeletePolicy::Uncouple => "uncouple",
            DeletePolicy::Ignore => "ignore",
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // `pad`, not `write_str`: tables align these with `{:<14}`.
                f.pad(self.as_str())
            }
        }
    )*};
}

display_as_str!(Arrow, MissingPolicy, DeletePolicy);

/// What to do when both sides changed since the last synchronization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// `on conflict: SYSTEM wins`
    Wins(String),
    /// `on conflict: log` (and the default of a `<->` mapping): change nothing.
    Log,
}

/// A mapping's policies, defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policies {
    pub missing: MissingPolicy,
    /// None for a one-way mapping without an `on conflict` clause.
    pub conflict: Option<ConflictPolicy>,
    pub delete: DeletePolicy,
}

impl Policies {
    /// The policies of a mapping: its `on ...` clauses over the defaults.
    pub fn of(arrow: Arrow, clauses: &[ast::Clause]) -> Policies {
        let mut p = Policies {
            missing: MissingPolicy::Create,
            conflict: (arrow == Arrow::Both).then_some(ConflictPolicy::Log),
            delete: DeletePolicy::Ignore,
        };
        for clause in clauses {
            let ast::Clause::Policy(policy) = clause else {
                continue;
            };
            match &policy.policy {
                ast::Policy::Missing(m) => p.missing = (*m).into(),
                ast::Policy::Conflict(ast::ConflictPolicy::Log) => {
                    p.conflict = Some(ConflictPolicy::Log)
                }
                ast::Policy::Conflict(ast::ConflictPolicy::Wins(s)) => {
                    p.conflict = Some(ConflictPolicy::Wins(s.name.clone()))
                }
                ast::Policy::Delete(d) => p.delete = (*d).into(),
            }
        }
        p
    }

    /// Option mappings skip what does not match and never delete.
    pub fn options() -> Policies {
        Policies {
            missing: MissingPolicy::Skip,
            conflict: None,
            delete: DeletePolicy::Ignore,
        }
    }
}

impl From<ast::MissingPolicy> for MissingPolicy {
    fn from(m: ast::MissingPolicy) -> Self {
        match m {
            ast::MissingPolicy::Create => MissingPolicy::Create,
            ast::MissingPolicy::Skip => MissingPolicy::Skip,
        }
    }
}

impl From<ast::DeletePolicy> for DeletePolicy {
    fn from(d: ast::DeletePolicy) -> Self {
        match d {
            ast::DeletePolicy::Restore => DeletePolicy::Restore,
            ast::DeletePolicy::Uncouple => DeletePolicy::Uncouple,
            ast::DeletePolicy::Ignore => DeletePolicy::Ignore,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Span;

    fn policy(p: ast::Policy) -> ast::Clause {
        ast::Clause::Policy(ast::PolicyClause {
            policy: p,
            span: Span::default(),
        })
    }

    #[test]
    fn defaults_depend_on_the_arrow() {
        let one_way = Policies::of(Arrow::Forward, &[]);
        assert_eq!(one_way.missing, MissingPolicy::Create);
        assert_eq!(one_way.conflict, None);
        assert_eq!(one_way.delete, DeletePolicy::Ignore);
        let both = Policies::of(Arrow::Both, &[]);
        assert_eq!(both.conflict, Some(ConflictPolicy::Log));
    }

    #[test]
    fn clauses_override_the_defaults() {
        let wins = ast::Ident {
            name: "bc".into(),
            quoted: false,
            span: Span::default(),
        };
        let clauses = [
            policy(ast::Policy::Missing(ast::MissingPolicy::Skip)),
            policy(ast::Policy::Conflict(ast::ConflictPolicy::Wins(wins))),
            policy(ast::Policy::Delete(ast::DeletePolicy::Restore)),
        ];
        let p = Policies::of(Arrow::Both, &clauses);
        assert_eq!(p.missing, MissingPolicy::Skip);
        assert_eq!(p.conflict, Some(ConflictPolicy::Wins("bc".into())));
        assert_eq!(p.delete, DeletePolicy::Restore);
    }

    #[test]
    fn enums_serialize_as_the_language_writes_them() {
        let json = serde_json::to_string(&(
            Arrow::Forward,
            Arrow::Backward,
            Arrow::Both,
            MissingPolicy::Skip,
            DeletePolicy::Uncouple,
        ))
        .unwrap();
        assert_eq!(json, r#"["->","<-","<->","skip","uncouple"]"#);
        assert_eq!(Arrow::Both.as_str(), "<->");
        assert_eq!(DeletePolicy::Restore.as_str(), "restore");
    }
}
