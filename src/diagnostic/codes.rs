//! The registry of diagnostic codes: the only place codes live. Never reuse a code.
//! Long explanations live in `docs/errors.md`, one `## CODE` section each.

use super::Severity;

/// A registered diagnostic code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
}

macro_rules! codes {
    ($($name:ident = $id:literal, $sev:ident, $title:literal;)*) => {
        $(pub const $name: Code = Code { id: $id, severity: Severity::$sev, title: $title };)*
        /// Every registered code, in order.
        pub const ALL: &[Code] = &[$($name),*];
    };
}

codes! {
    // Syntax and input (E01)
    SYNTAX = "E0101", Error, "syntax error";
    INVALID_UTF8 = "E0102", Error, "file is not valid UTF-8";
    BINARY_FILE = "E0103", Error, "file is binary";
    TOO_DEEP = "E0104", Error, "nesting too deep";
    TOO_LARGE = "E0105", Error, "file too large";
    INVALID_LITERAL = "E0106", Error, "invalid literal";
    UNKNOWN_MODIFIER = "E0107", Error, "unknown field modifier";
    UNKNOWN_POLICY = "E0108", Error, "unknown policy";
    EMPTY_FILE = "W0109", Warning, "file declares nothing";
    // Declarations (E02)
    DUPLICATE_SYSTEM = "E0201", Error, "system declared twice differently";
    DUPLICATE_MAPPING = "E0202", Error, "duplicate mapping name";
    UNKNOWN_KIND = "E0203", Error, "unknown system kind";
    SCHEMA_UNREADABLE = "E0204", Error, "schema catalog cannot be read";
    SCHEMA_INVALID = "E0205", Error, "schema catalog is invalid";
    DUPLICATE_CLAUSE = "E0206", Error, "clause given twice";
    DUPLICATE_SETTING = "E0207", Error, "setting given twice";
    COMPANY_NOT_DATAVERSE = "E0208", Error, "`company` on a system that is not `dataverse`";
    COMPANY_COLUMN_MISSING = "E0209", Error, "company-scoped entity without the company column";
    COMPANY_COLUMN_TYPE = "E0210", Error, "company column is not a lookup to one company entity";
    COMPANY_FILTERED = "E0211", Error, "`where` on the company column of a company-scoped entity";
    COMPANY_WRITTEN = "E0212", Error, "mapping writes the company column of a company-scoped entity";
    // Names (E03)
    UNKNOWN_FIELD = "E0301", Error, "unknown field";
    UNKNOWN_TABLE = "E0302", Error, "unknown table or entity";
    UNKNOWN_SYSTEM = "E0303", Error, "unknown system";
    UNKNOWN_MAPPING = "E0304", Error, "unknown mapping";
    UNKNOWN_OPTION = "E0305", Error, "unknown option label";
    UNKNOWN_FUNCTION = "E0306", Error, "unknown transform function";
    FOREIGN_SYSTEM = "E0307", Error, "system is not part of the mapping";
    NOT_AN_OPTION = "E0308", Error, "field is not an option field";
    UNKNOWN_SETTING = "E0309", Error, "unknown setting";
    // Directions and targets (E04)
    ARROW_AGAINST_MAPPING = "E0401", Error, "field arrow not allowed by the mapping's direction";
    BIDIRECTIONAL_OPTIONS = "E0402", Error, "option mapping cannot be bidirectional";
    CONSTANT_TARGET = "E0403", Error, "constant on the target side";
    TARGET_TWICE = "E0404", Error, "target field written twice";
    READ_ONLY_TARGET = "E0405", Error, "target field is read-only";
    NO_FIELD_IN_DIRECTION = "E0406", Error, "no field flows in the mapping's direction";
    SAME_SYSTEM = "E0407", Error, "mapping pairs a system with itself";
    CONFLICT_ON_ONE_WAY = "E0408", Error, "conflict policy on a one-way mapping";
    CONDITION_AGAINST_FLOW = "E0409", Error, "conditional field lines flow from the other system";
    SPLIT_ONE_WAY = "E0410", Error, "`split` in a bidirectional mapping";
    WATERMARK_ON_TARGET = "E0411", Error, "`watermark SYSTEM: none` on the side that is only written";
    CREATE_OPTIONS_TARGET = "E0412", Error, "`create missing` outside a `->` option mapping into Dataverse";
    ALSO_NOT_OPTION = "E0413", Error, "`also` names no option field of the option set's system";
    // Lookups and modifiers (E05)
    VIA_WRONG_TABLES = "E0501", Error, "`via` mapping pairs other tables";
    LOOKUP_WITHOUT_VIA = "E0502", Error, "reference field without `via`";
    VIA_ON_PLAIN_FIELD = "E0503", Error, "`via` on a field that references nothing";
    MODIFIER_NEEDS_VIA = "E0504", Error, "modifier needs a lookup";
    CONFLICTING_MODIFIERS = "E0505", Error, "modifiers exclude each other";
    BORROWED_COUPLINGS = "E0506", Error, "`couple via` with a clause that couples or creates";
    THROUGH_WITHOUT_VIA = "E0520", Error, "`through` on a line without `via`";
    THROUGH_OTHER_SYSTEM = "E0521", Error, "`through` table of a system the line's field is not in";
    THROUGH_TYPE = "E0522", Error, "`through` column of another type than the line's field";
    // Types (E06)
    FUNCTION_TYPE = "E0601", Error, "function does not accept the value's type";
    TYPE_MISMATCH = "E0602", Error, "source and target types do not match";
    BAD_ARGUMENT = "E0603", Error, "invalid function argument";
    MAY_TRUNCATE = "W0604", Warning, "text longer than the target field";
    FILTER_TYPE = "E0605", Error, "filter value does not fit the field";
    COUPLE_TYPE = "E0606", Error, "`couple by` fields of different types";
    SPLIT_LENGTH = "E0607", Error, "split length does not fit the target field";
    UNKNOWN_VALUE_SET = "E0608", Error, "`is` names no value set";
    VALUE_SET_TYPE = "E0609", Error, "value-set test on a field that holds no text";
    VALUE_SET_PLACE = "E0610", Error, "value-set test not a part of the `where`'s top-level `and`";
    BLANK_NOT_A_LOOKUP = "E0611", Error, "`blank is` names no lookup to the mapping's table";
    BLANK_KEY_NOT_TEXT = "E0612", Error, "`blank is` on a mapping whose other side has no code key";
    // Dependencies (E07)
    CYCLE = "E0701", Error, "dependency cycle";
    // Advice (W08)
    NO_CONFLICT_POLICY = "W0801", Warning, "bidirectional mapping without a conflict policy";
    ALSO_WITHOUT_CREATE = "W0802", Warning, "`also` without `create missing`";
    OPTION_LABEL_UNMATCHED = "W0803", Warning, "option-to-option line: a source label has no target label";
    // Endpoints of a profile (E09): `coupler check --profile`
    FIELD_NOT_IN_API = "E0901", Error, "field not exposed by the endpoint's API";
    LINE_LEFT_OUT = "W0903", Warning, "field line left out: the endpoint does not serve its field";
    TABLE_LEFT_OUT = "W0904", Warning, "mapping left out: the endpoint does not serve its table";
    LOOKUP_LEFT_OUT = "W0905", Warning, "field line left out: it looks up through a mapping left out";
    LINE_ONE_WAY = "W0906", Warning, "field line one-way: the endpoint cannot write its field";
    TABLE_SCOPED = "W0907", Warning, "table read from an entity set that holds other records too";
    OPTION_SHARED_IN_API = "W0908", Warning, "filter on an option label the API shows as the same value as others";
}

/// Looks a code up by its id, case-insensitively (`e0301` works too).
pub fn find(id: &str) -> Option<Code> {
    ALL.iter().copied().find(|c| c.id.eq_ignore_ascii_case(id))
}

const ERRORS_MD: &str = include_str!("../../docs/errors.md");

/// The long explanation of a code, from `docs/errors.md`.
pub fn explanation(code: Code) -> Option<&'static str> {
    let heading = format!("## {}", code.id);
    let start = ERRORS_MD.find(&heading)?;
    let rest = &ERRORS_MD[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map(|i| i + heading.len() + 1)
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end())
}
