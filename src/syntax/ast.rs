//! The typed syntax tree. Every node carries the span it was parsed from.

use crate::source::Span;
use rust_decimal::Decimal;

/// A name as written: bare (`Name`) or quoted (`"No."`).
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub quoted: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// The text after `#`, without the line break.
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    System(SystemDecl),
    Settings(SettingsDecl),
    Mapping(MappingDecl),
    Options(OptionsDecl),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::System(s) => s.span,
            Item::Settings(s) => s.span,
            Item::Mapping(m) => m.span,
            Item::Options(o) => o.span,
        }
    }
}

/// `system bc = business_central "../schemas/business-central.yaml"`
#[derive(Clone, Debug, PartialEq)]
pub struct SystemDecl {
    pub name: Ident,
    pub kind: Ident,
    pub schema: StrLit,
    /// `company bcbi_companyid except systemuser, uom`
    pub company: Option<CompanyScope>,
    pub span: Span,
}

/// `company bcbi_companyid except systemuser, uom`: the lookup column that says which Business
/// Central company a record belongs to, and the entities every company shares.
#[derive(Clone, Debug, PartialEq)]
pub struct CompanyScope {
    pub column: Ident,
    pub except: Vec<Ident>,
    pub span: Span,
}

/// `settings { sales_orders = true }`
#[derive(Clone, Debug, PartialEq)]
pub struct SettingsDecl {
    pub settings: Vec<Assignment>,
    pub close: Span,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `->`: from the left system to the right one.
    Forward,
    /// `<-`: from the right system to the left one.
    Backward,
    /// `<->`: both ways.
    Both,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Forward => "->",
            Direction::Backward => "<-",
            Direction::Both => "<->",
        }
    }

    /// Whether a field line with direction `self` fits in a mapping with direction `mapping`.
    pub fn fits(self, mapping: Direction) -> bool {
        mapping == Direction::Both || self == mapping
    }

    pub fn flows_forward(self) -> bool {
        matches!(self, Direction::Forward | Direction::Both)
    }

    pub fn flows_backward(self) -> bool {
        matches!(self, Direction::Backward | Direction::Both)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arrow {
    pub dir: Direction,
    pub span: Span,
}

/// `bc.Customer`
#[derive(Clone, Debug, PartialEq)]
pub struct TableRef {
    pub system: Ident,
    pub table: Ident,
    pub span: Span,
}

/// `bc."Payment Terms".Code`
#[derive(Clone, Debug, PartialEq)]
pub struct FieldRef {
    pub system: Ident,
    pub table: Ident,
    pub field: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MappingDecl {
    pub name: Ident,
    pub left: TableRef,
    pub arrow: Arrow,
    pub right: TableRef,
    pub clauses: Vec<Clause>,
    /// The closing brace, where trailing comments of the body belong.
    pub close: Span,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OptionsDecl {
    pub name: Ident,
    pub left: FieldRef,
    pub arrow: Arrow,
    pub right: FieldRef,
    /// `create missing`: codes with no label become new option values.
    pub create_missing: Option<Span>,
    /// `also a.b.c, ...`: option sets that get the same new values.
    pub also: Vec<FieldRef>,
    /// `schedule every ...`
    pub schedule: Option<Box<ScheduleClause>>,
    pub pairs: Vec<OptionPair>,
    pub close: Option<Span>,
    pub span: Span,
}

/// `'COD' = 'Net 30'` inside an options block.
#[derive(Clone, Debug, PartialEq)]
pub struct OptionPair {
    pub code: StrLit,
    pub label: StrLit,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Clause {
    Where(WhereClause),
    Couple(CoupleClause),
    After(AfterClause),
    Fields(FieldsBlock),
    CreateValues(CreateValues),
    Policy(PolicyClause),
    Schedule(ScheduleClause),
    Key(FieldOverride),
    Watermark(FieldOverride),
    When(WhenClause),
    CoupleVia(CoupleVia),
    Split(SplitClause),
    Blank(BlankClause),
}

impl Clause {
    pub fn span(&self) -> Span {
        match self {
            Clause::Where(c) => c.span,
            Clause::Couple(c) => c.span,
            Clause::After(c) => c.span,
            Clause::Fields(c) => c.span,
            Clause::CreateValues(c) => c.span,
            Clause::Policy(c) => c.span,
            Clause::Schedule(c) => c.span,
            Clause::Key(c) | Clause::Watermark(c) => c.span,
            Clause::When(c) => c.span,
            Clause::CoupleVia(c) => c.span,
            Clause::Split(c) => c.span,
            Clause::Blank(c) => c.span,
        }
    }

    /// Canonical position of the clause in a mapping body (used by `fmt`).
    pub fn rank(&self) -> u8 {
        match self {
            Clause::When(_) => 0,
            Clause::Key(_) => 1,
            Clause::Watermark(_) => 2,
            Clause::Where(_) => 3,
            Clause::Couple(_) | Clause::CoupleVia(_) | Clause::Blank(_) => 4,
            Clause::After(_) => 5,
            Clause::Policy(p) => match p.policy {
                Policy::Missing(_) => 6,
                Policy::Conflict(_) => 7,
                Policy::Delete(_) => 8,
            },
            Clause::Schedule(_) => 9,
            Clause::CreateValues(_) => 10,
            Clause::Fields(f) if f.condition.is_none() => 11,
            // Conditional lines after the lines they override.
            Clause::Fields(_) => 12,
            Clause::Split(_) => 13,
        }
    }
}

/// `where sales: statecode == 'Active'`
#[derive(Clone, Debug, PartialEq)]
pub struct WhereClause {
    pub system: Ident,
    pub expr: Expr,
    pub span: Span,
}

/// `couple by Code == isocurrencycode [ignoring case]`; several clauses are priority groups.
#[derive(Clone, Debug, PartialEq)]
pub struct CoupleClause {
    pub pairs: Vec<CouplePair>,
    pub ignore_case: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CouplePair {
    pub left: Ident,
    pub right: Ident,
    pub span: Span,
}

/// `after SALESPEOPLE, CURRENCY`
#[derive(Clone, Debug, PartialEq)]
pub struct AfterClause {
    pub names: Vec<Ident>,
    pub span: Span,
}

/// `couple via M`: the mapping updates the records mapping `M` coupled; it never couples or
/// creates records itself.
#[derive(Clone, Debug, PartialEq)]
pub struct CoupleVia {
    pub mapping: Ident,
    pub span: Span,
}

/// `split FIELD every N into FIELD [numbered FIELD] { lines }`: a source text longer than `N`
/// continues on extra target records, one per further `N` characters, each written with the
/// block's lines; the first part goes to the main record.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitClause {
    pub field: Ident,
    pub every: Literal,
    pub into: Ident,
    pub numbered: Option<Ident>,
    pub body: FieldsBlock,
    pub span: Span,
}

impl SplitClause {
    /// The part length (the checker proved it a positive integer).
    pub fn length(&self) -> usize {
        match &self.every.kind {
            LitKind::Num(raw, _) => raw.parse().unwrap_or(0),
            _ => 0,
        }
    }
}

/// `when SYSTEM: EXPR` on a fields block: its lines apply to the source records that match.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldsWhen {
    pub system: Ident,
    pub expr: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldsBlock {
    pub condition: Option<FieldsWhen>,
    pub lines: Vec<FieldLine>,
    pub close: Span,
    pub span: Span,
}

/// `"Salesperson Code" -> ownerid via SALESPEOPLE | trim [not null]`
#[derive(Clone, Debug, PartialEq)]
pub struct FieldLine {
    pub left: Operand,
    pub arrow: Arrow,
    pub right: Operand,
    pub via: Option<Ident>,
    pub through: Option<Through>,
    pub transforms: Vec<Call>,
    pub modifiers: Vec<Modifier>,
    pub span: Span,
}

/// `through bc."Contact Business Relation"("Contact No." -> "No." where "Link to Table" ==
/// 'Customer')`: the line's value is a `from` of `table`; the rows the filter keeps exchange it
/// for their `to`, which the `via` looks up (and the other way back).
#[derive(Clone, Debug, PartialEq)]
pub struct Through {
    pub table: TableRef,
    pub from: Ident,
    pub to: Ident,
    pub filter: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Field(Ident),
    Const(Literal),
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Field(i) => i.span,
            Operand::Const(l) => l.span,
        }
    }
}

/// `| truncate(30)` or `| map { 'A' => 'B' }`
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: Ident,
    pub args: Vec<Literal>,
    /// Written with parentheses (`trim()` vs `trim`), kept only to report it; fmt drops empty ones.
    pub map: Option<Vec<MapEntry>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MapEntry {
    pub from: Literal,
    pub to: Literal,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModifierKind {
    /// Skip the transfer when the value would be null (Business Central's Not Null).
    NotNull,
    /// Clear the target when the lookup fails instead of failing the record.
    ClearOnFail,
    /// Patch the lookup after the target mapping ran; no ordering edge.
    Deferred,
    /// The line points at the record this one belongs to: it waits until that is coupled.
    Parent,
}

impl ModifierKind {
    pub const ALL: [(&'static str, ModifierKind); 4] = [
        ("not null", ModifierKind::NotNull),
        ("clear on fail", ModifierKind::ClearOnFail),
        ("deferred", ModifierKind::Deferred),
        ("parent", ModifierKind::Parent),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(s, _)| *s)
            .unwrap_or("")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Modifier {
    /// None when the words name no modifier (reported by the checker).
    pub kind: Option<ModifierKind>,
    pub words: String,
    pub span: Span,
}

/// `on create sales { customertypecode = 'Customer' }`
#[derive(Clone, Debug, PartialEq)]
pub struct CreateValues {
    pub system: Ident,
    pub values: Vec<Assignment>,
    pub close: Span,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    pub field: Ident,
    pub value: Literal,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyClause {
    pub policy: Policy,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Policy {
    Missing(MissingPolicy),
    Conflict(ConflictPolicy),
    Delete(DeletePolicy),
}

/// What to do with a source record that has no coupled target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingPolicy {
    Create,
    Skip,
}

/// What to do when both sides changed since the last synchronization.
#[derive(Clone, Debug, PartialEq)]
pub enum ConflictPolicy {
    /// `on conflict: bc wins`
    Wins(Ident),
    /// `on conflict: log`: record the conflict, change nothing.
    Log,
}

/// What to do when a coupled record was deleted on one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePolicy {
    Restore,
    Uncouple,
    Ignore,
}

/// `schedule every 30m idle 12h`
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleClause {
    pub every: DurationLit,
    pub idle: Option<DurationLit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DurationLit {
    pub seconds: u64,
    pub raw: String,
    pub span: Span,
}

/// `key sales: accountnumber` / `watermark bc: "Last Date Modified"`
#[derive(Clone, Debug, PartialEq)]
pub struct FieldOverride {
    pub system: Ident,
    pub field: Ident,
    pub span: Span,
}

/// `blank is sales.organization.basecurrencyid`: a blank key on the mapping's other side stands
/// for the record this field names (Business Central's local currency, Dataverse's base currency).
#[derive(Clone, Debug, PartialEq)]
pub struct BlankClause {
    pub target: FieldRef,
    pub span: Span,
}

/// `when sales_orders`
#[derive(Clone, Debug, PartialEq)]
pub struct WhenClause {
    pub setting: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>, Span),
    And(Vec<Expr>, Span),
    Not(Box<Expr>, Span),
    Paren(Box<Expr>, Span),
    Compare(Comparison),
    In(InList),
    /// `Code is iso4217`: the value is in a named value set; evaluated by coupler, never pushed down.
    InSet(InSet),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Or(_, s) | Expr::And(_, s) | Expr::Not(_, s) | Expr::Paren(_, s) => *s,
            Expr::Compare(c) => c.span,
            Expr::In(i) => i.span,
            Expr::InSet(i) => i.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub field: Ident,
    pub op: CmpOp,
    pub op_span: Span,
    pub value: Literal,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InList {
    pub field: Ident,
    pub negated: bool,
    pub values: Vec<Literal>,
    pub span: Span,
}

/// `Code is iso4217`, `Code is not iso4217`
#[derive(Clone, Debug, PartialEq)]
pub struct InSet {
    pub field: Ident,
    pub negated: bool,
    /// The value set's name (`iso4217`), as written.
    pub set: Ident,
    pub span: Span,
}

/// A single-quoted string used as a path or name, not as a value.
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LitKind {
    Str(String),
    /// The number as written, and its value.
    Num(String, Decimal),
    Bool(bool),
    Null,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub kind: LitKind,
    pub span: Span,
}

impl Literal {
    /// The literal as it is written in a mapping file.
    pub fn source_text(&self) -> String {
        match &self.kind {
            LitKind::Str(s) => quote_str(s),
            LitKind::Num(raw, _) => raw.clone(),
            LitKind::Bool(b) => b.to_string(),
            LitKind::Null => "null".into(),
        }
    }
}

/// `it's` -> `'it''s'`
pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
