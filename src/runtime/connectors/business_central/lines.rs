//! Pages that are read through their documents (`api_read_through:` in the catalog): Business
//! Central's line pages (`salesInvoiceLines`, `salesOrderLines`) have no `lastModifiedDateTime`
//! and refuse a read that filters on neither `id` nor `documentId` (one GUID each:
//! APIV2SalesOrderLines.Page.al / APIV2SalesInvoiceLines.Page.al OnFindRecord in
//! microsoft/BCApps c3414ede). So changes are read as the documents changed since the watermark
//! (keyset on the document page's stamp), then each one's lines by `documentId eq <id>`; a line's
//! stamp is its document's (Business Central restamps a document when one of its lines
//! changes), and the stream's position is the last document's, not a line's.

use super::{Api, BusinessCentral};
use crate::runtime::connector::{ChangeQuery, ConnectorError, Cursor, Page, Record};
use crate::runtime::connectors::odata;
use serde_json::{Map, Value};

/// The document side of a page read through its documents.
pub(super) struct Through<'a> {
    /// The document page (the `lookup:` table of the `api_read_through` field).
    pub parent: Api<'a>,
    /// The line page's property that holds the document's id (`documentId`).
    pub property: String,
}

impl BusinessCentral {
    pub(super) fn through<'a>(
        &'a self,
        a: &Api<'a>,
    ) -> Result<Option<Through<'a>>, ConnectorError> {
        let Some(by) = &a.table.api_read_through else {
            return Ok(None);
        };
        let field = a.table.fields.get(by).ok_or_else(|| {
            self.err(format!(
                "`{}`: api_read_through names no field `{by}`",
                a.name
            ))
        })?;
        let (Some(property), Some(parent)) = (field.api_ref.as_deref(), field.lookup.first())
        else {
            return Err(self.err(format!(
                "`{}`.`{by}` (api_read_through) needs an `api_ref` and one `lookup` table",
                a.name
            )));
        };
        Ok(Some(Through {
            parent: self.api(parent)?,
            property: property.clone(),
        }))
    }

    /// A change page of a line table: the next documents changed after the position, then
    /// their lines (the `pushed` filter applied to each document's lines).
    pub(super) async fn read_changes_through(
        &self,
        q: &ChangeQuery<'_>,
        after: Option<&Cursor>,
        a: &Api<'_>,
        t: &Through<'_>,
        select: Option<String>,
        pushed: Option<String>,
    ) -> Result<(Vec<Record>, Vec<Map<String, Value>>, Option<Cursor>, bool), ConnectorError> {
        let p = &t.parent;
        let top = q.page_size.max(1);
        let mut params = vec![("$select", format!("id,{}", p.modified))];
        if let Some(c) = after.or(q.since) {
            params.push(("$filter", odata::keyset(&p.modified, "id", c)));
        }
        params.push(("$orderby", format!("{} asc,id asc", p.modified)));
        params.push(("$top", top.to_string()));
        let url = self.entity_url(p.set, None, &params).await?;
        let (json, _) = self.get_json(url).await?;
        let docs = odata::rows(&json);
        let mut records = Vec::new();
        let mut rows = Vec::new();
        let mut position = None;
        for doc in &docs {
            let (id, stamp) = document(p, doc);
            for row in self
                .lines_of(a, t, &id, select.clone(), pushed.as_deref())
                .await?
            {
                let mut r = self.decode(a, q.table, &row);
                restamp(a, &mut r, &stamp);
                records.push(r);
                rows.push(row);
            }
            position = Some(Cursor {
                modified_on: stamp,
                id,
            });
        }
        Ok((records, rows, position, docs.len() >= top))
    }

    /// Every line of document `doc` (following next links).
    pub(super) async fn lines_of(
        &self,
        a: &Api<'_>,
        t: &Through<'_>,
        doc: &str,
        select: Option<String>,
        pushed: Option<&str>,
    ) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        let mut parts = vec![format!("{} eq {}", t.property, doc.to_lowercase())];
        parts.extend(pushed.map(str::to_string));
        let mut params = vec![("$filter", odata::and_all(&parts).unwrap_or_default())];
        if let Some(s) = select {
            params.push(("$select", s));
        }
        let url = self.entity_url(a.set, None, &params).await?;
        let mut page = Some(self.get_json(url).await?);
        let mut out = Vec::new();
        while let Some((json, url)) = page {
            out.extend(odata::rows(&json));
            page = self.client.next_page(&json, &url, &[]).await?;
        }
        Ok(out)
    }

    /// Every line of every document, `pushed` applied to each document's lines: for a search
    /// that names no document (one request per document).
    pub(super) async fn all_lines(
        &self,
        table: &str,
        a: &Api<'_>,
        t: &Through<'_>,
        pushed: Option<&str>,
    ) -> Result<Vec<Record>, ConnectorError> {
        let mut params = vec![("$select", format!("id,{}", t.parent.modified))];
        params.push(("$orderby", "id asc".to_string()));
        let url = self.entity_url(t.parent.set, None, &params).await?;
        let mut page = Some(self.get_json(url).await?);
        let mut out = Vec::new();
        while let Some((json, url)) = page {
            for doc in odata::rows(&json) {
                let (id, stamp) = document(&t.parent, &doc);
                let rows = self.lines_of(a, t, &id, None, pushed).await?;
                let mut records: Vec<Record> =
                    rows.iter().map(|r| self.decode(a, table, r)).collect();
                self.fill_refs(a, &rows, &mut records, None).await?;
                for r in &mut records {
                    restamp(a, r, &stamp);
                }
                out.extend(records);
            }
            page = self.client.next_page(&json, &url, &[]).await?;
        }
        Ok(out)
    }

    /// Lines by id: one request per id (the page takes one GUID in an `id` filter), stamped
    /// with their documents' stamps like lines read through them.
    pub(super) async fn lines_by_ids(
        &self,
        table: &str,
        a: &Api<'_>,
        t: &Through<'_>,
        ids: &[String],
    ) -> Result<Vec<Record>, ConnectorError> {
        let mut rows = Vec::new();
        for id in ids
            .iter()
            .map(|i| i.to_lowercase())
            .filter(|i| uuid::Uuid::parse_str(i).is_ok())
        {
            let params = [("$filter", format!("id eq {id}"))];
            let url = self.entity_url(a.set, None, &params).await?;
            rows.extend(odata::rows(&self.get_json(url).await?.0));
        }
        let mut records: Vec<Record> = rows.iter().map(|r| self.decode(a, table, r)).collect();
        self.fill_refs(a, &rows, &mut records, None).await?;
        self.stamp_lines(a, t, &rows, &mut records).await?;
        Ok(records)
    }

    /// Gives lines their documents' stamps (one request per 50 documents): a line read by id
    /// or answered by a write then carries the stamp it has when read through its document, so
    /// that it is not taken for changed (or in conflict) on the next read.
    pub(super) async fn stamp_lines(
        &self,
        a: &Api<'_>,
        t: &Through<'_>,
        rows: &[Map<String, Value>],
        records: &mut [Record],
    ) -> Result<(), ConnectorError> {
        let doc_of = |row: &Map<String, Value>| {
            row.get(&t.property)
                .and_then(Value::as_str)
                .map(str::to_lowercase)
        };
        let mut docs: Vec<String> = rows.iter().filter_map(doc_of).collect();
        docs.sort();
        docs.dedup();
        let mut stamps = std::collections::HashMap::new();
        let p = &t.parent;
        for filter in odata::id_filters("id", &docs) {
            let params = [
                ("$filter", filter),
                ("$select", format!("id,{}", p.modified)),
            ];
            let url = self.entity_url(p.set, None, &params).await?;
            for doc in odata::rows(&self.get_json(url).await?.0) {
                let (id, stamp) = document(p, &doc);
                if !stamp.is_empty() {
                    stamps.insert(id, stamp);
                }
            }
        }
        for (row, r) in rows.iter().zip(records.iter_mut()) {
            if let Some(stamp) = doc_of(row).and_then(|d| stamps.get(&d)) {
                restamp(a, r, stamp);
            }
        }
        Ok(())
    }
}

/// A document row's id (lower case) and stamp (empty when it has none).
fn document(p: &Api<'_>, doc: &Map<String, Value>) -> (String, String) {
    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
    let stamp = doc
        .get(&p.modified)
        .and_then(Value::as_str)
        .and_then(odata::stamp)
        .unwrap_or_default();
    (id.to_lowercase(), stamp)
}

/// A line takes its document's stamp, as its modification and as its stamp field.
fn restamp(a: &Api<'_>, r: &mut Record, stamp: &str) {
    r.modified_on = stamp.to_string();
    if let Some(m) = &a.table.modified_on {
        r.fields.insert(m.clone(), Value::String(stamp.to_string()));
    }
}

/// A page of lines: its records (the local filter applied) and the position after its last
/// document, which is where the stream stands even when those documents had no line.
pub(super) fn page(
    records: Vec<Record>,
    rest: Option<&crate::plan::filter::Pred>,
    position: Option<Cursor>,
    more: bool,
) -> Page {
    let mut page = odata::page(records, rest, more.then(|| position.clone()).flatten());
    page.position = position;
    page
}
