//! `coupler schema pull`: an OData v4 `$metadata` document (CSDL XML) converted to a schema
//! catalog (`docs/schema-catalog.md`). Pure: no I/O here; the command line fetches the document.
//!
//! The conversion runs in three steps that can be tested on their own:
//! [`parse_csdl`] reads the XML into a [`Csdl`] model, [`build_catalog`] maps it to a
//! [`PulledCatalog`] (one [`PulledTable`] per entity type, fields with catalog types), and
//! [`render`] writes the YAML. [`catalog_from_csdl`] does all three and checks the result with
//! [`Catalog::parse`] and [`Catalog::validate`].
//!
//! Mapping rules:
//! - Every non-abstract `EntityType` with a key (its own or inherited through `BaseType`) becomes a
//!   table named by the type's `Name`; its `EntitySet` name becomes `api:`.
//! - `Key/PropertyRef` -> `key`; key fields come first, the others in document order.
//! - `Edm.String` (`MaxLength`) -> `text` (`length`), `Edm.Guid` -> `guid`, `Edm.Int16/Int32` ->
//!   `integer`, `Edm.Int64` -> `bigint`, `Edm.Decimal/Double/Single` -> `decimal`, `Edm.Boolean`
//!   -> `boolean`, `Edm.Date` -> `date`, `Edm.DateTimeOffset` -> `datetime`, `Edm.TimeOfDay` ->
//!   `time`, `Edm.Duration` -> `duration`, `Edm.Binary/Stream` -> `blob`; an `EnumType` ->
//!   `option` with its members (`_x0020_` decoded, so BC's blank member is `' '`).
//!   Complex types, collections and spatial types are left out (a comment names them).
//! - A property that a single-valued `NavigationProperty` names in its `ReferentialConstraint`
//!   gets `lookup:` the navigation target. Dataverse's `_x_value` properties become the lookup
//!   column `x` (`type: lookup`), with every target whose navigation property refers to it.
//!   Targets outside the catalog (not in `$metadata`, or left out by `--only`) are dropped, and a
//!   comment says so.
//! - `read_only`: `Org.OData.Core.V1.Computed` and `Core.Permissions = Read`, inline or in
//!   `Annotations` blocks; also the system stamps (Dataverse `createdon`, `createdby`,
//!   `modifiedon`, `modifiedby`, ...; BC `lastModifiedDateTime`).
//! - Dataverse choices are `Edm.Int32` in `$metadata` (no enum): they come out as `integer` unless
//!   [`PullOptions::option_sets`] supplies their values (read from the Metadata API).

use crate::schema::SystemKind;
use crate::schema::Catalog;
use indexmap::IndexMap;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// What to pull and how to describe it.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Tables to keep (table or entity set names); empty: all.
    pub only: Vec<String>,
    /// Where the document came from (a URL or file name), for the header comment.
    pub source: Option<String>,
    /// Choice values per table and column (label, value), e.g. from Dataverse's Metadata API.
    /// A listed `integer` column becomes an `option` column.
    pub option_sets: BTreeMap<String, BTreeMap<String, OptionSetValues>>,
}

/// The values of one choice column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptionSetValues {
    /// The option set's name when it is shared (a global choice), else `None`.
    pub name: Option<String>,
    pub options: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullError {
    pub message: String,
    /// 1-based line of the XML document, when the problem has one.
    pub line: Option<usize>,
}

impl PullError {
    fn new(message: impl Into<String>, line: Option<usize>) -> PullError {
        PullError {
            message: message.into(),
            line,
        }
    }
}

impl std::fmt::Display for PullError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PullError {}

// ---------------------------------------------------------------------------------------------
// CSDL model
// ---------------------------------------------------------------------------------------------

/// The parts of a CSDL document a catalog needs. Qualified names use namespaces, never aliases.
#[derive(Debug, Clone, Default)]
pub struct Csdl {
    /// Entity types in document order.
    pub entity_types: Vec<EntityType>,
    /// (entity set name, qualified entity type name), in document order.
    pub entity_sets: Vec<(String, String)>,
    /// Enum types by qualified name.
    pub enums: IndexMap<String, EnumType>,
    /// Type definitions by qualified name -> underlying qualified type.
    pub type_definitions: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct EntityType {
    /// `Namespace.Name`.
    pub qname: String,
    pub name: String,
    pub base: Option<String>,
    pub is_abstract: bool,
    pub key: Vec<String>,
    pub properties: Vec<Property>,
    pub navigation: Vec<NavigationProperty>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Property {
    pub name: String,
    /// Qualified type (`Edm.String`, `Microsoft.NAV.customerBlocked`), without `Collection(...)`.
    pub ty: String,
    pub collection: bool,
    pub max_length: Option<u32>,
    /// `Core.Computed` or `Core.Permissions = Read`.
    pub read_only: bool,
}

#[derive(Debug, Clone)]
pub struct NavigationProperty {
    pub name: String,
    /// Qualified target entity type.
    pub target: String,
    pub collection: bool,
    /// (dependent property, referenced property).
    pub constraints: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct EnumType {
    pub name: String,
    /// (member name as written, value).
    pub members: Vec<(String, i64)>,
}

/// A small element tree; enough for CSDL.
#[derive(Debug)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    line: usize,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn required(&self, name: &str) -> Result<&str, PullError> {
        self.attr(name).ok_or_else(|| {
            PullError::new(
                format!("<{}> has no `{name}` attribute", self.name),
                Some(self.line),
            )
        })
    }
}

/// Counts lines incrementally while the reader moves forward.
struct Lines<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, pos: usize) -> usize {
        let pos = pos.min(self.text.len());
        if pos >= self.pos {
            self.line += self.text[self.pos..pos]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
        } else {
            self.line = 1 + self.text[..pos].iter().filter(|b| **b == b'\n').count();
        }
        self.pos = pos;
        self.line
    }
}

fn element(e: &BytesStart<'_>, line: usize) -> Result<Node, PullError> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| {
            PullError::new(
                format!("malformed attribute in <{name}>: {err}"),
                Some(line),
            )
        })?;
        let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|err| {
                PullError::new(
                    format!("malformed attribute `{key}` in <{name}>: {err}"),
                    Some(line),
                )
            })?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Node {
        name,
        attrs,
        children: Vec::new(),
        line,
    })
}

fn parse_tree(xml: &str) -> Result<Node, PullError> {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut lines = Lines {
        text: xml.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(err) => {
                let line = lines.at(reader.error_position() as usize);
                return Err(PullError::new(
                    format!("the $metadata document is not well-formed XML: {err}"),
                    Some(line),
                ));
            }
        };
        // The element starts after any whitespace skipped before it.
        let start = before
            + xml.as_bytes()[before.min(xml.len())..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
        match event {
            Event::Start(e) => {
                let line = lines.at(start);
                stack.push(element(&e, line)?);
            }
            Event::Empty(e) => {
                let line = lines.at(start);
                let node = element(&e, line)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None if root.is_none() => root = Some(node),
                    None => {
                        return Err(PullError::new(
                            "the $metadata document has more than one root element",
                            Some(line),
                        ))
                    }
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| {
                    PullError::new("unexpected closing tag", Some(lines.at(start)))
                })?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None if root.is_none() => root = Some(node),
                    None => {
                        return Err(PullError::new(
                            "the $metadata document has more than one root element",
                            Some(node.line),
                        ))
                    }
                }
            }
            Event::Text(t) if stack.is_empty() => {
                let line = lines.at(start);
                let text = String::from_utf8_lossy(t.as_ref()).into_owned();
                let shown: String = text.chars().take(40).collect();
                return Err(PullError::new(
                    format!("the $metadata document is not well-formed XML: text `{shown}` outside the root element"),
                    Some(line),
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        let last = lines.at(xml.len());
        return Err(PullError::new(
            format!(
                "the $metadata document is not well-formed XML: it ends before <{}> (opened on line {}) is closed",
                open.name, open.line
            ),
            Some(last),
        ));
    }
    root.ok_or_else(|| PullError::new("the $metadata document is empty", Some(1)))
}

/// Alias -> namespace, from `edmx:Include` and `Schema Alias`.
#[derive(Default)]
struct Names {
    aliases: HashMap<String, String>,
}

impl Names {
    /// `mscrm.account` -> `Microsoft.Dynamics.CRM.account`.
    fn qualify(&self, name: &str) -> String {
        match name.rsplit_once('.') {
            Some((ns, local)) => match self.aliases.get(ns) {
                Some(full) => format!("{full}.{local}"),
                None => name.to_string(),
            },
            None => name.to_string(),
        }
    }

    /// `Collection(NS.T)` -> (qualified `NS.T`, true).
    fn type_ref(&self, ty: &str) -> (String, bool) {
        match ty
            .strip_prefix("Collection(")
            .and_then(|t| t.strip_suffix(')'))
        {
            Some(inner) => (self.qualify(inner.trim()), true),
            None => (self.qualify(ty.trim()), false),
        }
    }
}

const CORE: &str = "Org.OData.Core.V1";

/// Whether an annotation element marks its target read-only.
fn read_only_annotation(names: &Names, a: &Node) -> bool {
    let Some(term) = a.attr("Term") else {
        return false;
    };
    let term = names.qualify(term);
    if term == format!("{CORE}.Computed") {
        return a.attr("Bool").is_none_or(|b| b.trim() == "true");
    }
    if term == format!("{CORE}.Permissions") {
        let member = a.attr("EnumMember").unwrap_or_default();
        return member
            .split_whitespace()
            .map(|m| m.rsplit('/').next().unwrap_or(m))
            .any(|m| m == "Read")
            && !member.contains("Write");
    }
    false
}

/// Reads a CSDL (`edmx:Edmx`) document.
pub fn parse_csdl(xml: &str) -> Result<Csdl, PullError> {
    let root = parse_tree(xml)?;
    if root.name != "Edmx" {
        return Err(PullError::new(
            format!(
                "not an OData $metadata document: the root element is <{}>, not <edmx:Edmx>",
                root.name
            ),
            Some(root.line),
        ));
    }
    let mut names = Names::default();
    for r in root.children("Reference") {
        for inc in r.children("Include") {
            if let (Some(alias), Some(ns)) = (inc.attr("Alias"), inc.attr("Namespace")) {
                names.aliases.insert(alias.to_string(), ns.to_string());
            }
        }
    }
    let schemas: Vec<&Node> = root
        .children("DataServices")
        .flat_map(|d| d.children("Schema"))
        .collect();
    if schemas.is_empty() {
        return Err(PullError::new(
            "the $metadata document has no <edmx:DataServices>/<Schema>",
            Some(root.line),
        ));
    }
    for s in &schemas {
        if let (Some(alias), Some(ns)) = (s.attr("Alias"), s.attr("Namespace")) {
            names.aliases.insert(alias.to_string(), ns.to_string());
        }
    }
    // External annotations: (qualified type, property) -> read-only.
    let mut external: HashMap<(String, String), bool> = HashMap::new();
    for s in &schemas {
        for block in s.children("Annotations") {
            let Some(target) = block.attr("Target") else {
                continue;
            };
            let Some((ty, prop)) = target.split_once('/') else {
                continue;
            };
            if block
                .children("Annotation")
                .any(|a| read_only_annotation(&names, a))
            {
                external.insert((names.qualify(ty), prop.to_string()), true);
            }
        }
    }
    let mut csdl = Csdl::default();
    for s in &schemas {
        let ns = s.required("Namespace")?;
        for child in &s.children {
            match child.name.as_str() {
                "EntityType" => {
                    let name = child.required("Name")?.to_string();
                    let qname = format!("{ns}.{name}");
                    let mut key = Vec::new();
                    for k in child.children("Key") {
                        for r in k.children("PropertyRef") {
                            key.push(r.required("Name")?.to_string());
                        }
                    }
                    let mut properties = Vec::new();
                    for p in child.children("Property") {
                        let pname = p.required("Name")?.to_string();
                        let (ty, collection) = names.type_ref(p.required("Type")?);
                        let max_length = p.attr("MaxLength").and_then(|m| m.trim().parse().ok());
                        let read_only = p
                            .children("Annotation")
                            .any(|a| read_only_annotation(&names, a))
                            || external.contains_key(&(qname.clone(), pname.clone()));
                        properties.push(Property {
                            name: pname,
                            ty,
                            collection,
                            max_length,
                            read_only,
                        });
                    }
                    let mut navigation = Vec::new();
                    for n in child.children("NavigationProperty") {
                        let (target, collection) = names.type_ref(n.required("Type")?);
                        let mut constraints = Vec::new();
                        for c in n.children("ReferentialConstraint") {
                            constraints.push((
                                c.required("Property")?.to_string(),
                                c.required("ReferencedProperty")?.to_string(),
                            ));
                        }
                        navigation.push(NavigationProperty {
                            name: n.required("Name")?.to_string(),
                            target,
                            collection,
                            constraints,
                        });
                    }
                    csdl.entity_types.push(EntityType {
                        qname,
                        name,
                        base: child.attr("BaseType").map(|b| names.qualify(b)),
                        is_abstract: child.attr("Abstract") == Some("true"),
                        key,
                        properties,
                        navigation,
                        line: child.line,
                    });
                }
                "EnumType" => {
                    let name = child.required("Name")?.to_string();
                    let mut members = Vec::new();
                    let mut next = 0i64;
                    for m in child.children("Member") {
                        let value = match m.attr("Value") {
                            Some(v) => v.trim().parse::<i64>().map_err(|_| {
                                PullError::new(
                                    format!("enum member value `{v}` is not an integer"),
                                    Some(m.line),
                                )
                            })?,
                            None => next,
                        };
                        next = value + 1;
                        members.push((m.required("Name")?.to_string(), value));
                    }
                    csdl.enums
                        .insert(format!("{ns}.{name}"), EnumType { name, members });
                }
                "TypeDefinition" => {
                    let name = child.required("Name")?;
                    let under = names.qualify(child.required("UnderlyingType")?);
                    csdl.type_definitions.insert(format!("{ns}.{name}"), under);
                }
                "EntityContainer" => {
                    for set in child.children("EntitySet") {
                        csdl.entity_sets.push((
                            set.required("Name")?.to_string(),
                            names.qualify(set.required("EntityType")?),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(csdl)
}

// ---------------------------------------------------------------------------------------------
// Catalog model
// ---------------------------------------------------------------------------------------------

/// A catalog ready to render.
#[derive(Debug, Clone)]
pub struct PulledCatalog {
    pub system: SystemKind,
    /// Header comment lines (without `# `).
    pub header: Vec<String>,
    pub tables: Vec<PulledTable>,
}

impl PulledCatalog {
    pub fn table(&self, name: &str) -> Option<&PulledTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn table_names(&self) -> Vec<String> {
        self.tables.iter().map(|t| t.name.clone()).collect()
    }
}

#[derive(Debug, Clone)]
pub struct PulledTable {
    pub name: String,
    pub api: Option<String>,
    pub key: Vec<String>,
    pub modified_on: Option<String>,
    pub modified_by: Option<String>,
    pub fields: Vec<PulledField>,
    /// Comment lines shown above `fields:`.
    pub notes: Vec<String>,
}

impl PulledTable {
    pub fn field(&self, name: &str) -> Option<&PulledField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PulledField {
    pub name: String,
    /// A catalog type name: `text`, `guid`, `option`, `lookup`, ...
    pub ty: &'static str,
    pub length: Option<u32>,
    pub options: Vec<(String, i64)>,
    pub option_set: Option<String>,
    pub lookup: Vec<String>,
    pub api: Option<String>,
    pub read_only: bool,
    /// A trailing comment.
    pub note: Option<String>,
}

fn edm_type(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "Edm.String" => "text",
        "Edm.Guid" => "guid",
        "Edm.Byte" | "Edm.SByte" | "Edm.Int16" | "Edm.Int32" => "integer",
        "Edm.Int64" => "bigint",
        "Edm.Decimal" | "Edm.Double" | "Edm.Single" => "decimal",
        "Edm.Boolean" => "boolean",
        "Edm.Date" => "date",
        "Edm.DateTimeOffset" => "datetime",
        "Edm.TimeOfDay" => "time",
        "Edm.Duration" => "duration",
        "Edm.Binary" | "Edm.Stream" => "blob",
        _ => return None,
    })
}

/// `_x0020_` -> ` ` (XML name encoding, as Business Central writes enum members).
pub fn decode_xml_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find("_x") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let decoded = after
            .get(..5)
            .filter(|s| s.ends_with('_'))
            .and_then(|s| u32::from_str_radix(&s[..4], 16).ok())
            .and_then(char::from_u32);
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[5..];
            }
            None => {
                out.push_str("_x");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Dataverse columns the platform stamps: never a mapping's target.
const DATAVERSE_SYSTEM_STAMPS: [&str; 9] = [
    "createdon",
    "createdby",
    "createdonbehalfby",
    "modifiedon",
    "modifiedby",
    "modifiedonbehalfby",
    "versionnumber",
    "overriddencreatedon",
    "importsequencenumber",
];

/// `_parentcustomerid_value` -> `parentcustomerid`.
fn lookup_value_name(property: &str) -> Option<&str> {
    property
        .strip_prefix('_')
        .and_then(|p| p.strip_suffix("_value"))
        .filter(|p| !p.is_empty())
}

struct Inherited<'a> {
    key: Vec<String>,
    properties: Vec<&'a Property>,
    navigation: Vec<&'a NavigationProperty>,
}

/// An entity type's key, properties and navigation properties, base types first.
fn flatten<'a>(csdl: &'a Csdl, et: &'a EntityType) -> Inherited<'a> {
    let by_name: HashMap<&str, &EntityType> = csdl
        .entity_types
        .iter()
        .map(|t| (t.qname.as_str(), t))
        .collect();
    let mut chain = vec![et];
    let mut seen = BTreeSet::from([et.qname.as_str()]);
    let mut cur = et;
    while let Some(base) = cur.base.as_deref().and_then(|b| by_name.get(b)) {
        if !seen.insert(base.qname.as_str()) {
            break;
        }
        chain.push(base);
        cur = base;
    }
    chain.reverse();
    let mut out = Inherited {
        key: Vec::new(),
        properties: Vec::new(),
        navigation: Vec::new(),
    };
    for t in chain {
        if !t.key.is_empty() {
            out.key = t.key.clone();
        }
        out.properties.extend(t.properties.iter());
        out.navigation.extend(t.navigation.iter());
    }
    out
}

/// Maps a CSDL model to a catalog of `kind`.
pub fn build_catalog(
    csdl: &Csdl,
    kind: SystemKind,
    options: &PullOptions,
) -> Result<PulledCatalog, PullError> {
    // Candidate tables: concrete entity types with a key; first set per type wins.
    let mut set_of: HashMap<&str, &str> = HashMap::new();
    for (set, ty) in &csdl.entity_sets {
        set_of.entry(ty.as_str()).or_insert(set.as_str());
    }
    let mut header_notes = Vec::new();
    let mut candidates: Vec<(&EntityType, Inherited<'_>)> = Vec::new();
    let mut names_taken: BTreeSet<&str> = BTreeSet::new();
    for et in &csdl.entity_types {
        if et.is_abstract {
            continue;
        }
        let inh = flatten(csdl, et);
        if inh.key.is_empty() {
            continue;
        }
        if !names_taken.insert(et.name.as_str()) {
            header_notes.push(format!(
                "Entity type `{}` (line {}) is left out: another namespace has a type of the same name.",
                et.qname, et.line
            ));
            continue;
        }
        candidates.push((et, inh));
    }
    if candidates.is_empty() {
        return Err(PullError::new(
            "the $metadata document has no entity type with a key",
            None,
        ));
    }
    // Abstract base type -> the concrete types derived from it, in document order.
    let by_qname: HashMap<&str, &EntityType> = csdl
        .entity_types
        .iter()
        .map(|t| (t.qname.as_str(), t))
        .collect();
    let mut derived: HashMap<&str, Vec<&str>> = HashMap::new();
    for (et, _) in &candidates {
        let mut seen = BTreeSet::new();
        let mut cur = *et;
        while let Some(base) = cur.base.as_deref().and_then(|b| by_qname.get(b)) {
            if !seen.insert(base.qname.as_str()) {
                break;
            }
            if base.is_abstract {
                derived
                    .entry(base.qname.as_str())
                    .or_default()
                    .push(et.qname.as_str());
            }
            cur = base;
        }
    }
    // --only: by table name or entity set name.
    if !options.only.is_empty() {
        let mut wanted = BTreeSet::new();
        for w in &options.only {
            let found = candidates.iter().find(|(et, _)| {
                et.name == *w || set_of.get(et.qname.as_str()).is_some_and(|s| s == w)
            });
            match found {
                Some((et, _)) => {
                    wanted.insert(et.qname.clone());
                }
                None => {
                    let mut all: Vec<&str> =
                        candidates.iter().map(|(e, _)| e.name.as_str()).collect();
                    all.extend(set_of.values().copied());
                    let hint = crate::diagnostic::suggest::did_you_mean(w, all.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    return Err(PullError::new(
                        format!("`--only {w}`: the $metadata has no entity type or entity set `{w}`{hint}"),
                        None,
                    ));
                }
            }
        }
        candidates.retain(|(et, _)| wanted.contains(&et.qname));
    }
    let table_of: HashMap<&str, &str> = candidates
        .iter()
        .map(|(et, _)| (et.qname.as_str(), et.name.as_str()))
        .collect();
    let all_types: HashMap<&str, &str> = csdl
        .entity_types
        .iter()
        .map(|et| (et.qname.as_str(), et.name.as_str()))
        .collect();

    let mut tables = Vec::new();
    for (et, inh) in &candidates {
        let mut notes = Vec::new();
        let mut fields: Vec<PulledField> = Vec::new();
        let mut renamed: HashMap<String, String> = HashMap::new();
        let mut skipped = Vec::new();
        let mut dropped_targets: BTreeSet<String> = BTreeSet::new();
        let single_navs: Vec<&&NavigationProperty> =
            inh.navigation.iter().filter(|n| !n.collection).collect();
        let prop_names: BTreeSet<&str> = inh.properties.iter().map(|p| p.name.as_str()).collect();
        for p in &inh.properties {
            let mut ty_name = p.ty.clone();
            if let Some(under) = csdl.type_definitions.get(&ty_name) {
                ty_name = under.clone();
            }
            let (ty, enum_options) = if p.collection {
                (None, None)
            } else if let Some(e) = csdl.enums.get(&ty_name) {
                (Some("option"), Some(e))
            } else {
                (edm_type(&ty_name), None)
            };
            let Some(mut ty) = ty else {
                skipped.push(format!(
                    "{} ({})",
                    p.name,
                    if p.collection {
                        format!("Collection({})", p.ty)
                    } else {
                        p.ty.clone()
                    }
                ));
                continue;
            };
            let mut name = p.name.clone();
            // Navigation properties that refer through this property.
            let refs: Vec<&str> = single_navs
                .iter()
                .filter(|n| n.constraints.iter().any(|(dep, _)| *dep == p.name))
                .map(|n| n.target.as_str())
                .collect();
            let mut targets: Vec<&str> = refs.clone();
            if kind == SystemKind::Dataverse {
                if let Some(column) = lookup_value_name(&p.name) {
                    if !prop_names.contains(column) && ty == "guid" {
                        name = column.to_string();
                        renamed.insert(p.name.clone(), name.clone());
                        ty = "lookup";
                        if targets.is_empty() {
                            targets.extend(
                                single_navs
                                    .iter()
                                    .filter(|n| n.name == column)
                                    .map(|n| n.target.as_str()),
                            );
                        }
                    }
                }
            }
            let mut lookup = Vec::new();
            let mut missing = Vec::new();
            for t in targets {
                // An abstract target (Dataverse's `principal`) means its concrete subtypes.
                let expanded: Vec<&str> = match derived.get(t) {
                    Some(subtypes) if !table_of.contains_key(t) => subtypes.clone(),
                    _ => vec![t],
                };
                for q in expanded {
                    match table_of.get(q) {
                        Some(table) => {
                            if !lookup.iter().any(|l: &String| l == table) {
                                lookup.push(table.to_string());
                            }
                        }
                        None => {
                            let shown = all_types
                                .get(q)
                                .copied()
                                .unwrap_or_else(|| q.rsplit('.').next().unwrap_or(q))
                                .to_string();
                            if !missing.contains(&shown) {
                                missing.push(shown);
                            }
                        }
                    }
                }
            }
            let note = if missing.is_empty() {
                (ty == "lookup" && lookup.is_empty())
                    .then(|| "target unknown: no navigation property refers to it".to_string())
            } else {
                dropped_targets.extend(missing.iter().cloned());
                Some(format!(
                    "lookup target{} not in this catalog: {}",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                ))
            };
            let options_list: Vec<(String, i64)> = enum_options
                .map(|e| {
                    e.members
                        .iter()
                        .map(|(n, v)| (decode_xml_name(n), *v))
                        .collect()
                })
                .unwrap_or_default();
            let mut read_only = p.read_only;
            match kind {
                SystemKind::Dataverse => {
                    if DATAVERSE_SYSTEM_STAMPS.contains(&name.as_str()) {
                        read_only = true;
                    }
                }
                SystemKind::BusinessCentral => {
                    if name == "lastModifiedDateTime" {
                        read_only = true;
                    }
                }
            }
            fields.push(PulledField {
                api: (kind == SystemKind::BusinessCentral).then(|| p.name.clone()),
                name,
                ty,
                length: if ty == "text" { p.max_length } else { None },
                options: options_list,
                option_set: enum_options.map(|e| e.name.clone()),
                lookup,
                read_only,
                note,
            });
        }
        // Key fields first, then document order.
        let key: Vec<String> = inh
            .key
            .iter()
            .map(|k| renamed.get(k).cloned().unwrap_or_else(|| k.clone()))
            .collect();
        for k in &key {
            if !fields.iter().any(|f| f.name == *k) {
                return Err(PullError::new(
                    format!(
                        "entity type `{}`: key property `{k}` is not among its (catalogued) properties",
                        et.qname
                    ),
                    Some(et.line),
                ));
            }
        }
        let mut ordered: Vec<PulledField> = key
            .iter()
            .filter_map(|k| fields.iter().find(|f| f.name == *k).cloned())
            .collect();
        ordered.extend(fields.into_iter().filter(|f| !key.contains(&f.name)));
        let (modified_on, modified_by) = match kind {
            SystemKind::Dataverse => (
                ordered
                    .iter()
                    .any(|f| f.name == "modifiedon")
                    .then(|| "modifiedon".to_string()),
                ordered
                    .iter()
                    .any(|f| f.name == "modifiedby")
                    .then(|| "modifiedby".to_string()),
            ),
            SystemKind::BusinessCentral => (
                ordered
                    .iter()
                    .any(|f| f.name == "lastModifiedDateTime")
                    .then(|| "lastModifiedDateTime".to_string()),
                None,
            ),
        };
        if !skipped.is_empty() {
            notes.push(format!(
                "Not catalogued (no catalog type): {}.",
                skipped.join(", ")
            ));
        }
        if !dropped_targets.is_empty() {
            notes.push(format!(
                "Lookups to tables outside this catalog were dropped: {}.",
                dropped_targets.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        tables.push(PulledTable {
            name: et.name.clone(),
            api: set_of.get(et.qname.as_str()).map(|s| s.to_string()),
            key,
            modified_on,
            modified_by,
            fields: ordered,
            notes,
        });
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let mut catalog = PulledCatalog {
        system: kind,
        header: Vec::new(),
        tables,
    };
    let applied = apply_option_sets(&mut catalog, &options.option_sets);
    settle_option_sets(&mut catalog);
    catalog.header = header(kind, options, applied, &catalog);
    catalog.header.extend(header_notes);
    Ok(catalog)
}

/// Turns listed `integer` columns into `option` columns; returns how many it changed.
pub fn apply_option_sets(
    catalog: &mut PulledCatalog,
    sets: &BTreeMap<String, BTreeMap<String, OptionSetValues>>,
) -> usize {
    let mut applied = 0;
    for table in &mut catalog.tables {
        let Some(columns) = sets.get(&table.name) else {
            continue;
        };
        for field in &mut table.fields {
            let Some(values) = columns.get(&field.name) else {
                continue;
            };
            if !matches!(field.ty, "integer" | "option") || values.options.is_empty() {
                continue;
            }
            // Labels are map keys: make them unique and non-empty.
            let mut options: Vec<(String, i64)> = Vec::new();
            for (label, value) in &values.options {
                let mut label = label.trim().to_string();
                if label.is_empty() {
                    label = value.to_string();
                }
                if options.iter().any(|(l, _)| *l == label) {
                    label = format!("{label} ({value})");
                }
                options.push((label, *value));
            }
            field.ty = "option";
            field.options = options;
            field.option_set = values.name.clone();
            applied += 1;
        }
    }
    applied
}

/// Keeps `option_set` only where two or more fields share the name with identical options.
fn settle_option_sets(catalog: &mut PulledCatalog) {
    let mut uses: BTreeMap<String, Vec<Vec<(String, i64)>>> = BTreeMap::new();
    for t in &catalog.tables {
        for f in &t.fields {
            if let Some(set) = &f.option_set {
                uses.entry(set.clone()).or_default().push(f.options.clone());
            }
        }
    }
    for t in &mut catalog.tables {
        for f in &mut t.fields {
            if let Some(set) = &f.option_set {
                let lists = &uses[set];
                if lists.len() < 2 || lists.iter().any(|l| *l != lists[0]) {
                    f.option_set = None;
                }
            }
        }
    }
}

fn header(
    kind: SystemKind,
    options: &PullOptions,
    applied: usize,
    catalog: &PulledCatalog,
) -> Vec<String> {
    let mut h = vec![format!(
        "{} schema catalog pulled by `coupler schema pull` from the OData $metadata (CSDL) of",
        match kind {
            SystemKind::Dataverse => "Dataverse",
            SystemKind::BusinessCentral => "Business Central",
        }
    )];
    h.push(format!(
        "  {}",
        options.source.as_deref().unwrap_or("a $metadata document")
    ));
    if !options.only.is_empty() {
        h.push(format!("Tables: only {}.", options.only.join(", ")));
    }
    h.push(String::new());
    match kind {
        SystemKind::Dataverse => {
            h.push("Table names are the entity type names (logical names); `api:` is the entity set name.".into());
            h.push("Lookup columns: `_x_value` properties become the column `x` (`type: lookup`), with the".into());
            h.push("targets of the navigation properties that refer to them.".into());
            if applied > 0 {
                h.push(format!("Choice values of {applied} column(s) come from the Metadata API (EntityDefinitions(...)/Attributes)."));
            } else {
                h.push("Choice (picklist), state and status columns are Edm.Int32 in $metadata, so they are".into());
                h.push("`integer` here: turn them into `type: option` with their values (maker portal, or".into());
                h.push("`coupler schema pull --option-sets` against the live endpoint).".into());
            }
            h.push("read_only: Core.Computed / Core.Permissions=Read annotations and the system stamps".into());
            h.push("(createdon, createdby, modifiedon, modifiedby, versionnumber, ...).".into());
        }
        SystemKind::BusinessCentral => {
            h.push("Names are the API's: tables are entity type names (`customer`), fields are API property".into());
            h.push("names, and `api:` repeats them. The AL names (Customer, \"No.\") are not in $metadata; you".into());
            h.push("may rename tables and fields to AL names, keeping `api:` as it is.".into());
            h.push("$metadata has only Edm.String: every string is `text`; make it `code` where the AL field".into());
            h.push("is Code[n]. Enum options are the API's member names and values (`_x0020_` is ' ').".into());
            h.push("read_only: Core.Computed / Core.Permissions=Read annotations and lastModifiedDateTime.".into());
        }
    }
    let no_length = catalog
        .tables
        .iter()
        .flat_map(|t| &t.fields)
        .filter(|f| f.ty == "text" && f.length.is_none())
        .count();
    if no_length > 0 {
        h.push(format!(
            "{no_length} text field(s) have no MaxLength in $metadata and so no `length`; add it by hand."
        ));
    }
    h.push("See docs/schema-catalog.md for the format.".into());
    h
}

// ---------------------------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------------------------

/// A YAML scalar: plain when safe, else double-quoted.
fn scalar(s: &str) -> String {
    const RESERVED: [&str; 12] = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", "nan", "inf",
    ];
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn comment_line(out: &mut String, indent: &str, text: &str) {
    let text = text.replace(['\n', '\r'], " ");
    if text.is_empty() {
        let _ = writeln!(out, "{indent}#");
    } else {
        let _ = writeln!(out, "{indent}# {text}");
    }
}

/// Writes the catalog as YAML, in the layout of the shipped catalogs.
pub fn render(catalog: &PulledCatalog) -> String {
    let mut out = String::new();
    for line in &catalog.header {
        comment_line(&mut out, "", line);
    }
    if !catalog.header.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "system: {}", catalog.system.as_str());
    let _ = writeln!(out, "tables:");
    for t in &catalog.tables {
        out.push('\n');
        let _ = writeln!(out, "  {}:", scalar(&t.name));
        if let Some(api) = &t.api {
            let _ = writeln!(out, "    api: {}", scalar(api));
        }
        match t.key.as_slice() {
            [one] => {
                let _ = writeln!(out, "    key: {}", scalar(one));
            }
            many => {
                let list: Vec<String> = many.iter().map(|k| scalar(k)).collect();
                let _ = writeln!(out, "    key: [ {} ]", list.join(", "));
            }
        }
        if let Some(m) = &t.modified_on {
            let _ = writeln!(out, "    modified_on: {}", scalar(m));
        }
        if let Some(m) = &t.modified_by {
            let _ = writeln!(out, "    modified_by: {}", scalar(m));
        }
        for n in &t.notes {
            comment_line(&mut out, "    ", n);
        }
        let _ = writeln!(out, "    fields:");
        for f in &t.fields {
            let mut parts = vec![format!("type: {}", f.ty)];
            if let Some(l) = f.length {
                parts.push(format!("length: {l}"));
            }
            if f.ty == "option" {
                let opts: Vec<String> = f
                    .options
                    .iter()
                    .map(|(l, v)| format!("{}: {v}", scalar(l)))
                    .collect();
                parts.push(format!("options: {{ {} }}", opts.join(", ")));
            }
            if let Some(set) = &f.option_set {
                parts.push(format!("option_set: {}", scalar(set)));
            }
            match f.lookup.as_slice() {
                [] => {}
                [one] => parts.push(format!("lookup: {}", scalar(one))),
                many => {
                    let list: Vec<String> = many.iter().map(|k| scalar(k)).collect();
                    parts.push(format!("lookup: [ {} ]", list.join(", ")));
                }
            }
            if f.read_only {
                parts.push("read_only: true".into());
            }
            if let Some(api) = &f.api {
                parts.push(format!("api: {}", scalar(api)));
            }
            let _ = write!(out, "      {}: {{ {} }}", scalar(&f.name), parts.join(", "));
            if let Some(note) = &f.note {
                let _ = write!(out, "   # {}", note.replace(['\n', '\r'], " "));
            }
            out.push('\n');
        }
    }
    out
}

/// `$metadata` XML -> catalog YAML, checked with [`Catalog::parse`] and [`Catalog::validate`].
pub fn catalog_from_csdl(
    xml: &str,
    kind: SystemKind,
    options: &PullOptions,
) -> Result<String, PullError> {
    let csdl = parse_csdl(xml)?;
    let catalog = build_catalog(&csdl, kind, options)?;
    let yaml = render(&catalog);
    let parsed = Catalog::parse(&yaml).map_err(|e| {
        PullError::new(
            format!("internal error: the pulled catalog does not load: {e}"),
            None,
        )
    })?;
    let problems = parsed.validate();
    if !problems.is_empty() {
        return Err(PullError::new(
            format!(
                "internal error: the pulled catalog does not validate: {}",
                problems.join("; ")
            ),
            None,
        ));
    }
    Ok(yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_xml_names() {
        assert_eq!(decode_xml_name("_x0020_"), " ");
        assert_eq!(decode_xml_name("Credit_x0020_Memo"), "Credit Memo");
        assert_eq!(decode_xml_name("a_xZZ"), "a_xZZ");
        assert_eq!(decode_xml_name("plain"), "plain");
    }

    #[test]
    fn quotes_what_yaml_would_misread() {
        assert_eq!(scalar("account"), "account");
        assert_eq!(scalar(" "), "\" \"");
        assert_eq!(scalar("No."), "\"No.\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("1abc"), "\"1abc\"");
        assert_eq!(scalar("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn lookup_value_names() {
        assert_eq!(lookup_value_name("_modifiedby_value"), Some("modifiedby"));
        assert_eq!(lookup_value_name("__value"), None);
        assert_eq!(lookup_value_name("modifiedby"), None);
    }

    #[test]
    fn unclosed_element_names_the_line() {
        let err = parse_csdl("<edmx:Edmx xmlns:edmx=\"x\">\n<a>\n").unwrap_err();
        assert!(err.message.contains("<a>"), "{err}");
        assert_eq!(err.line, Some(3));
    }
}
