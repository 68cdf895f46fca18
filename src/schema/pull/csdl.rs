//! Step 1: the CSDL XML read into a small element tree, then into the [`Csdl`] model.

use super::PullError;
use indexmap::IndexMap;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::{HashMap, HashSet};

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
    /// The element's own text (trimmed), e.g. `<Bool>true</Bool>`.
    text: String,
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
        text: String::new(),
        line,
    })
}

/// The deepest nesting read. A real CSDL document nests about ten levels (annotations with
/// records in collections a few more); a deeper one is hostile, and reading it would overflow
/// the stack when the tree is walked or dropped.
const MAX_DEPTH: usize = 256;

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
                if stack.len() >= MAX_DEPTH {
                    return Err(PullError::new(
                        format!("the $metadata document nests elements deeper than {MAX_DEPTH} levels; a CSDL document needs about ten"),
                        Some(line),
                    ));
                }
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
            Event::Text(t) => {
                let text = t.unescape().map_err(|err| {
                    PullError::new(
                        format!("the $metadata document is not well-formed XML: {err}"),
                        Some(lines.at(start)),
                    )
                })?;
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&text);
                }
            }
            Event::CData(t) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&String::from_utf8_lossy(&t));
                }
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

/// An annotation's value in attribute form (`Bool="true"`) or element form (`<Bool>true</Bool>`),
/// one string per value (element form may list several, e.g. in a `<Collection>`).
fn annotation_values<'a>(a: &'a Node, kind: &'a str) -> Vec<&'a str> {
    if let Some(v) = a.attr(kind) {
        return vec![v];
    }
    let direct = a.children(kind);
    let listed = a.children("Collection").flat_map(|c| c.children(kind));
    direct.chain(listed).map(|n| n.text.trim()).collect()
}

/// Whether an annotation element marks its target read-only: `Core.Computed` (no value, or
/// `true`) or `Core.Permissions` of `Read` without `Write`, in attribute or element form.
fn read_only_annotation(names: &Names, a: &Node) -> bool {
    let Some(term) = a.attr("Term") else {
        return false;
    };
    let term = names.qualify(term);
    if term == format!("{CORE}.Computed") {
        let values = annotation_values(a, "Bool");
        return values.is_empty() || values.iter().all(|b| b.trim() == "true");
    }
    if term == format!("{CORE}.Permissions") {
        let values = annotation_values(a, "EnumMember");
        let members: Vec<&str> = values
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(|m| m.rsplit('/').next().unwrap_or(m))
            .collect();
        return members.contains(&"Read") && !members.iter().any(|m| m.contains("Write"));
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
    let names = Names::of(&root, &schemas);
    let external = external_read_only(&names, &schemas);
    let mut csdl = Csdl::default();
    for s in &schemas {
        let ns = s.required("Namespace")?;
        for child in &s.children {
            match child.name.as_str() {
                "EntityType" => {
                    let et = entity_type(&names, &external, ns, child)?;
                    csdl.entity_types.push(et);
                }
                "EnumType" => {
                    let e = enum_type(child)?;
                    csdl.enums.insert(format!("{ns}.{}", e.name), e);
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

impl Names {
    /// The aliases of `edmx:Reference/edmx:Include` and of the schemas themselves.
    fn of(root: &Node, schemas: &[&Node]) -> Names {
        let mut names = Names::default();
        let includes = root
            .children("Reference")
            .flat_map(|r| r.children("Include"));
        for node in includes.chain(schemas.iter().copied()) {
            if let (Some(alias), Some(ns)) = (node.attr("Alias"), node.attr("Namespace")) {
                names.aliases.insert(alias.to_string(), ns.to_string());
            }
        }
        names
    }
}

/// External annotations: the (qualified type, property) pairs an `Annotations` block marks
/// read-only.
fn external_read_only(names: &Names, schemas: &[&Node]) -> HashSet<(String, String)> {
    let mut external = HashSet::new();
    for s in schemas {
        for block in s.children("Annotations") {
            let Some(target) = block.attr("Target") else {
                continue;
            };
            let Some((ty, prop)) = target.split_once('/') else {
                continue;
            };
            if block
                .children("Annotation")
                .any(|a| read_only_annotation(names, a))
            {
                external.insert((names.qualify(ty), prop.to_string()));
            }
        }
    }
    external
}

fn entity_type(
    names: &Names,
    external: &HashSet<(String, String)>,
    ns: &str,
    node: &Node,
) -> Result<EntityType, PullError> {
    let name = node.required("Name")?.to_string();
    let qname = format!("{ns}.{name}");
    let mut key = Vec::new();
    for k in node.children("Key") {
        for r in k.children("PropertyRef") {
            key.push(r.required("Name")?.to_string());
        }
    }
    let mut properties = Vec::new();
    for p in node.children("Property") {
        let pname = p.required("Name")?.to_string();
        let (ty, collection) = names.type_ref(p.required("Type")?);
        let max_length = p.attr("MaxLength").and_then(|m| m.trim().parse().ok());
        let read_only = p
            .children("Annotation")
            .any(|a| read_only_annotation(names, a))
            || external.contains(&(qname.clone(), pname.clone()));
        properties.push(Property {
            name: pname,
            ty,
            collection,
            max_length,
            read_only,
        });
    }
    let mut navigation = Vec::new();
    for n in node.children("NavigationProperty") {
        navigation.push(navigation_property(names, n)?);
    }
    Ok(EntityType {
        qname,
        name,
        base: node.attr("BaseType").map(|b| names.qualify(b)),
        is_abstract: node.attr("Abstract") == Some("true"),
        key,
        properties,
        navigation,
        line: node.line,
    })
}

fn navigation_property(names: &Names, n: &Node) -> Result<NavigationProperty, PullError> {
    let (target, collection) = names.type_ref(n.required("Type")?);
    let mut constraints = Vec::new();
    for c in n.children("ReferentialConstraint") {
        constraints.push((
            c.required("Property")?.to_string(),
            c.required("ReferencedProperty")?.to_string(),
        ));
    }
    Ok(NavigationProperty {
        name: n.required("Name")?.to_string(),
        target,
        collection,
        constraints,
    })
}

/// An enum type; a member without `Value` is one more than the member before it.
fn enum_type(node: &Node) -> Result<EnumType, PullError> {
    let name = node.required("Name")?.to_string();
    let mut members = Vec::new();
    let mut next = 0i64;
    for m in node.children("Member") {
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
    Ok(EnumType { name, members })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclosed_element_names_the_line() {
        let err = parse_csdl("<edmx:Edmx xmlns:edmx=\"x\">\n<a>\n").unwrap_err();
        assert!(err.message.contains("<a>"), "{err}");
        assert_eq!(err.line, Some(3));
    }
}
