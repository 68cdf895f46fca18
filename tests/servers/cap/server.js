// CAP test servers for coupler: Dataverse (/api/data/v9.2) and Business Central (/api/v2.0).
//
//   node server.js            PORT unset or 0: a free port; prints `LISTENING <port>` on stdout
//   PORT=4004 node server.js  a fixed port
//
// Binds 127.0.0.1 only. The database is in-memory SQLite, so every start is clean (the only row is
// the BC company of db/data/bc-companies.csv). With COUPLER_EXIT_ON_STDIN_EOF=1 the server exits
// when its stdin closes, so a test harness that dies without cleaning up does not leave it behind.
// See README.md for the behaviour added on top of CAP (lookups, modifiedby, code fields).
'use strict'
const path = require('path')
const cds = require('@sap/cds')
const express = require('express')
const info = require('./srv/model-info.json')

// ISO 4217 currency codes, one a line (`#` comments): the codes Dataverse accepts for a currency.
const ISO_CURRENCIES = new Set(
  require('fs')
    .readFileSync(path.join(__dirname, '../../../schemas/value-sets/iso4217.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
)
const ROW_VERSION = 'systemRowVersion' // hidden etag of the line pages, never shown (gen_cds.py)
const DEFAULT_USER = '11111111-1111-1111-1111-111111111111' // modifiedby when no user header is sent
const BUSINESS_UNIT = '22222222-2222-2222-2222-222222222222'
const ORGANIZATION = '33333333-3333-3333-3333-333333333333'

// ---------------------------------------------------------------- Dataverse lookups (@odata.bind)
// CAP resolves `<nav>@odata.bind` itself but keeps only the key, not the entity set, so a
// polymorphic owner (`ownerid@odata.bind: "/teams(<id>)"`) could not be told from a systemuser.
// Wrap CAP's odataBind (used by POST, PATCH, PUT, and inside both $batch formats) and turn every
// Dataverse binding into the lookup column `_<field>_value`; the target's logical name goes to
// the hidden `_<field>_value_type` of a polymorphic lookup (no Web API property: Dataverse has no
// `<field>type` property and tells the type by the lookuplogicalname annotation).
// The raw JSON values are checked here too, before CAP converts them (see checkDataverseValues).
const cdsDir = path.dirname(require.resolve('@sap/cds/package.json'))
const bindFile = path.join(cdsDir, 'libx/odata/utils/odataBind.js')
const odataBind = require(bindFile)
require.cache[bindFile].exports = function coupler_odataBind(data, target) {
  if (target?.name?.startsWith('DataverseService.')) {
    const set = target.name.slice('DataverseService.'.length)
    for (const row of Array.isArray(data) ? data : [data]) {
      checkDataverseValues(row, set)
      dataverseBind(row, set)
    }
  }
  return odataBind(data, target)
}

function badRequest(message, code = '0x80048d19') {
  console.warn(`[coupler] 400: ${message}`) // in the harness's log (CapServer::log)
  return Object.assign(new Error(message), { statusCode: 400, status: 400, code })
}

function header(req, n) {
  return req?.headers?.[n] ?? req?.req?.headers?.[n] ?? cds.context?.http?.req?.headers?.[n]
}

const seeding = (req) => header(req, 'x-coupler-seed') === '1'

// Marks left on a row by dataverseBind for the CREATE/UPDATE handler (removed there).
const BOUND = '__coupler_bound' // lookup fields written through @odata.bind
const TYPES = '__coupler_types' // hidden type column -> logical name

// Edm.DateTimeOffset needs a date, a time and an offset; Edm.Date a date alone. CAP would take
// "2026-12-03" for a Timestamp (as midnight UTC); Dataverse refuses it.
const DATE_TIME_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/
const DATE = /^\d{4}-\d{2}-\d{2}$/
function checkDataverseValues(row, set) {
  const meta = info.dataverse[set]
  if (!row || typeof row !== 'object' || !meta) return
  for (const c of Object.keys(row)) {
    const hidden = Object.values(meta.lookups).some((l) => l.type_column === c)
    if (hidden || meta.not_properties.includes(c) || c === BOUND || c === TYPES)
      throw badRequest(`The property '${c}' does not exist on type 'Microsoft.Dynamics.CRM.${meta.logical}'.`, '0x80048d19')
  }
  const literal = (v, type) => badRequest(`Cannot convert the literal '${v}' to the expected type '${type}'.`, '0x80048d19')
  for (const c of meta.datetime) {
    const v = row[c]
    if (v != null && (typeof v !== 'string' || !DATE_TIME_OFFSET.test(v))) throw literal(v, 'Edm.DateTimeOffset')
  }
  for (const c of meta.date) {
    const v = row[c]
    if (v != null && (typeof v !== 'string' || !DATE.test(v))) throw literal(v, 'Edm.Date')
  }
}

function dataverseBind(row, set) {
  const meta = info.dataverse[set]
  if (!row || typeof row !== 'object' || !meta) return
  for (const prop of Object.keys(row)) {
    const m = prop.match(/^(.+)@odata\.bind$/)
    if (!m) continue
    const nav = m[1]
    // Bound only through the navigation properties Microsoft's reference names
    // (tests/servers/api/dataverse): `parentcustomerid_account`, `ownerid`, a custom `msdyn_Project`.
    const n = meta.navs[nav]
    if (!n) throw badRequest(`${set}: an undeclared navigation property '${nav}' was found (for ${prop})`)
    const field = n.field
    const lookup = meta.lookups[field]
    if (lookup.read_only && !seeding())
      throw badRequest(`The lookup '${field}' of ${meta.logical} is read-only: it cannot be set on create or update.`)
    const value = row[prop]
    delete row[prop]
    mark(row, BOUND, [...(row[BOUND] || []), field])
    if (value === null) {
      row[lookup.column] = null
      if (lookup.type_column) setType(row, lookup.type_column, null)
      continue
    }
    const r = typeof value === 'string' && value.match(/([A-Za-z_][A-Za-z0-9_]*)\(([0-9a-fA-F-]{36})\)\s*$/)
    if (!r) throw badRequest(`${set}: ${prop} must look like "<entityset>(<guid>)", got ${JSON.stringify(value)}`)
    const [, tset, id] = r
    if (!n.sets.includes(tset))
      throw badRequest(`${set}: ${prop} cannot refer to ${tset} (allowed: ${n.sets.join(', ')})`)
    row[lookup.column] = id.toLowerCase()
    if (lookup.type_column) setType(row, lookup.type_column, lookup.targets[tset])
  }
}

function setType(row, column, logical) {
  mark(row, TYPES, { ...(row[TYPES] || {}), [column]: logical })
}

// A mark for the CREATE/UPDATE handler: not enumerable, so CAP's input checks do not see it.
function mark(row, name, value) {
  Object.defineProperty(row, name, { value, enumerable: false, configurable: true, writable: true })
}

// The logical name of the row a lookup value refers to: the only target, else the hidden type
// column, else (a value written straight into `_<field>_value` by a test) the target table that
// has a row with that id.
async function lookupLogical(lookup, id, stored) {
  if (lookup.logicals.length === 1) return lookup.logicals[0]
  if (stored) return stored
  for (const [tset, logical] of Object.entries(lookup.targets)) {
    const e = cds.entities('dv')[tset]
    if (await SELECT.one.from(e).where({ [info.dataverse[tset].key]: id })) return logical
  }
  return null
}

// Dataverse answers `<lookup>@Microsoft.Dynamics.CRM.lookuplogicalname` next to every lookup value
// when Prefer asks odata.include-annotations with that annotation (or `*`).
function wantsLookupNames(req) {
  const prefer = String(header(req, 'prefer') || '')
  const m = prefer.match(/odata\.include-annotations\s*=\s*"?([^",;]*(?:,[^",;]*)*)"?/i)
  if (!m) return false
  return m[1].split(',').map((s) => s.trim()).some((a) => a === '*' || a === 'Microsoft.Dynamics.CRM.*' || a === 'Microsoft.Dynamics.CRM.lookuplogicalname')
}

// ---------------------------------------------------------------- Dataverse $batch request lines
// Microsoft's Dataverse batch examples write every request line with the absolute path
// (`POST /api/data/v9.2/accounts HTTP/1.1`) or the absolute URL, never relative to the service
// root (real-api-ground-truth.md, Dataverse 5). A multipart Dataverse batch with a relative
// request line is refused as a whole: 400, nothing of it is carried out. Content-ID references
// (`$1`) stay allowed. The lines are handed to CAP relative to the service root, as it expects.
const DV_ROOT = '/api/data/v9.2'
const m2jFile = path.join(cdsDir, 'libx/odata/parse/multipartToJson.js')
const multipartToJson = require(m2jFile)
require.cache[m2jFile].exports = Object.assign(async function coupler_multipartToJson(body, boundary) {
  const req = cds.context?.http?.req
  if (!req?._coupler_dataverse_batch) return multipartToJson(body, boundary)
  // CAP's parser prefixes a relative line with `/`, so check the lines as the client wrote them.
  const text = Array.isArray(body) ? body.join('') : String(body)
  for (const [, url] of text.matchAll(/^(?:GET|POST|PATCH|PUT|DELETE|MERGE) (\S+) HTTP\/1\.1\r?$/gim)) {
    if (url.startsWith('$')) continue
    let p = url
    if (/^https?:\/\//i.test(url)) {
      const u = new URL(url)
      if (u.host !== req.headers.host)
        throw badRequest(`The request line URL '${url}' of a batch part names another host than the batch.`, '0x8006088a')
      p = u.pathname
    }
    if (!p.startsWith(DV_ROOT + '/'))
      throw badRequest(
        `The request line URL '${url}' of a batch part is not an absolute path (${DV_ROOT}/...) nor an absolute URL.`,
        '0x8006088a'
      )
  }
  const parsed = await multipartToJson(body, boundary)
  for (const r of parsed.requests || []) {
    let url = String(r.url)
    if (/^\/https?:\/\//i.test(url)) url = url.slice(1)
    if (/^https?:\/\//i.test(url)) {
      const u = new URL(url)
      url = u.pathname + u.search
    }
    if (url.startsWith(DV_ROOT + '/')) r.url = url.slice(DV_ROOT.length + 1)
  }
  return parsed
}, multipartToJson)

// The key columns of a request's target row, from its URL (`accounts(<id>)`).
function keysOf(req) {
  const last = req.params.at(-1)
  if (last && typeof last === 'object') return last
  const key = Object.keys(req.target.keys).find((k) => !req.target.keys[k].isAssociation)
  return { [key]: last }
}

function userOf(req) {
  return header(req, 'x-coupler-user') || header(req, 'mscrmcallerid') || null
}

// ---------------------------------------------------------------- handlers
cds.on('served', (services) => {
  const dv = services.DataverseService
  if (dv) {
    // Dataverse does not require If-Match: an update or delete without a condition header applies
    // unconditionally (CAP answers 428 on etag'd entities, so `If-Match: *` is assumed).
    // A PATCH is an upsert, as in Dataverse: without a condition header a missing row is created;
    // `If-Match` (`*` or an etag) on a missing row is 404 (CAP would say 412); `If-None-Match: *`
    // on an existing row is 412; an etag that is not the row's is 412 (CAP's own check).
    const dataverseConditions = async (req) => {
      const h = req.headers
      if (!h) return
      const upsert = req.event === 'UPDATE' && !h['if-match'] && !h['if-none-match']
      if (upsert || h['if-match'] || h['if-none-match'] === '*') {
        const exists = await SELECT.one.from(req.subject)
        const missing = `${req.target.name.split('.').pop()} With Id = ${Object.values(keysOf(req)).join(',')} Does Not Exist`
        // A missing row is 404 whatever the condition (`*` or an etag); CAP would say 412.
        if (!exists && h['if-match']) return req.reject(404, missing)
        if (exists && req.event === 'UPDATE' && h['if-none-match'] === '*')
          return req.reject(412, 'A record with matching key values already exists.')
        if (!exists && req.event === 'UPDATE') {
          // Create the row, then let CAP's update (now of an existing row) answer.
          const entry = { ...req.data, ...keysOf(req) }
          for (const m of [BOUND, TYPES]) if (req.data[m]) mark(entry, m, req.data[m])
          await dv.create(req.target).entries(entry)
          req._coupler_created = true // the update that follows belongs to a create
          delete h['if-none-match']
        }
      }
      if (!h['if-match'] && !h['if-none-match']) h['if-match'] = '*'
    }
    dataverseConditions._initial = true // run with (before) CAP's own etag check, an "initial" handler
    dv.prepend(() => dv.before(['UPDATE', 'DELETE'], '*', dataverseConditions))
    // Writes, as Microsoft's entity reference allows them (tests/servers/api/dataverse): a column
    // valid neither for create nor for update (read_only) is refused in both, a create_only one
    // in an update of an existing row, an update_only one in a create (a PATCH that creates is a
    // create). Stricter than Dataverse, which ignores some of them: coupler must never send
    // them. Tests that load such values send `x-coupler-seed: 1`.
    dv.before(['CREATE', 'UPDATE', 'UPSERT'], '*', async (req) => {
      const set = req.target?.name?.split('.').pop()
      const meta = info.dataverse[set]
      if (!meta) return
      const elements = req.target.elements
      const creating = req.event === 'CREATE' || req._coupler_created
      const seed = seeding(req)
      for (const row of Array.isArray(req.data) ? req.data : [req.data]) {
        if (!row || typeof row !== 'object') continue
        const bound = row[BOUND] || []
        const types = row[TYPES] || {}
        delete row[BOUND]
        delete row[TYPES]
        if (!seed) {
          const refuse = (c, why) => {
            const message = `The column '${c}' of ${meta.logical} ${why}.`
            console.warn(`[coupler] 400: ${message}`) // in the harness's log (CapServer::log)
            return req.reject(400, message)
          }
          for (const c of meta.read_only) if (c in row) return refuse(c, 'is read-only: it cannot be set on create or update')
          const lookups = Object.entries(meta.lookups)
          // Dataverse creates a currency only for an ISO currency code it knows (the embedded
          // Dataverse gives the same answer; the list is ISO 4217, schemas/value-sets/iso4217.txt).
          if (creating && set === 'transactioncurrencies' && !ISO_CURRENCIES.has(String(row.isocurrencycode ?? '').toUpperCase())) {
            const message = `The currency code '${row.isocurrencycode ?? ''}' is not a valid ISO currency code: Dataverse creates a currency only for a code of its list of ISO currencies (isocurrencycode)`
            console.warn(`[coupler] 400: ${message}`)
            return req.reject(400, message)
          }
          if (creating) {
            for (const c of meta.update_only) if (c in row) return refuse(c, 'cannot be set on create (update only)')
            for (const [f, l] of lookups) if (l.update_only && bound.includes(f)) return refuse(f, 'cannot be set on create (update only)')
          } else {
            for (const c of meta.create_only) if (c in row) return refuse(c, 'cannot be changed by an update (create only)')
            for (const [f, l] of lookups) if (l.create_only && bound.includes(f)) return refuse(f, 'cannot be changed by an update (create only)')
          }
        }
        // The logical name of a polymorphic lookup's row, kept in the hidden type column (written
        // after the row, the service not exposing it): from the bound set, else looked up.
        for (const [, l] of Object.entries(meta.lookups)) {
          if (!l.type_column || !(l.column in row)) continue
          const id = row[l.column]
          types[l.type_column] = id == null ? null : await lookupLogical(l, id, types[l.type_column])
        }
        if (Object.keys(types).length) (req._coupler_types ??= []).push({ row, types })
        const user = userOf(req) || row._modifiedby_value || DEFAULT_USER
        if (meta.has_modifiedby) row._modifiedby_value = user
        if (req.event === 'CREATE' && meta.has_createdby) row._createdby_value = userOf(req) || row._createdby_value || user
        // Dataverse computes fullname (contacts, systemusers) on create
        if (req.event === 'CREATE' && elements.fullname && row.fullname == null && (row.firstname || row.lastname))
          row.fullname = [row.firstname, row.lastname].filter(Boolean).join(' ')
      }
    })
    dv.after(['CREATE', 'UPDATE', 'UPSERT'], '*', async (_result, req) => {
      const set = req.target?.name?.split('.').pop()
      const meta = info.dataverse[set]
      if (!meta || !req._coupler_types) return
      const db = cds.entities('dv')[set]
      for (const { row, types } of req._coupler_types) {
        const id = row[meta.key] ?? keysOf(req)[meta.key]
        if (id) await UPDATE(db).where({ [meta.key]: id }).with(types)
      }
    })
    // The lookuplogicalname annotation of every lookup value, when asked for (wantsLookupNames).
    dv.after('READ', '*', async (result, req) => {
      const set = req.target?.name?.split('.').pop()
      const meta = info.dataverse[set]
      if (!meta || !result || !wantsLookupNames(req)) return
      const rows = (Array.isArray(result) ? result : [result]).filter((r) => r && typeof r === 'object')
      const poly = Object.values(meta.lookups).filter((l) => l.type_column && rows.some((r) => r[l.column] != null))
      const stored = new Map()
      if (poly.length) {
        const ids = rows.map((r) => r[meta.key]).filter(Boolean)
        const found = await SELECT.from(cds.entities('dv')[set])
          .columns([meta.key, ...poly.map((l) => l.type_column)])
          .where({ [meta.key]: { in: ids } })
        for (const f of found) stored.set(f[meta.key], f)
      }
      for (const row of rows) {
        for (const l of Object.values(meta.lookups)) {
          const id = row[l.column]
          if (id == null) continue
          const logical = await lookupLogical(l, id, l.type_column && stored.get(row[meta.key])?.[l.type_column])
          if (logical) row[`${l.column}@Microsoft.Dynamics.CRM.lookuplogicalname`] = logical
        }
      }
    })
    dv.on('WhoAmI', (req) => ({
      BusinessUnitId: BUSINESS_UNIT,
      UserId: userOf(req) || DEFAULT_USER,
      OrganizationId: ORGANIZATION,
    }))
  }
  const bc = services.BusinessCentralService
  if (bc) {
    // Business Central stores Code fields in upper case. A property the API page marks
    // read-only (`Editable = false`, recorded in tests/servers/api/business-central) is refused,
    // as Business Central refuses it; tests that seed such values send `x-coupler-seed: 1`.
    bc.before(['CREATE', 'UPDATE', 'UPSERT'], '*', async (req) => {
      const set = req.target?.name?.split('.').pop()
      const meta = info.business_central[set]
      if (!meta) return
      const h = (n) => req.headers?.[n] ?? req.req?.headers?.[n] ?? cds.context?.http?.req?.headers?.[n]
      const seeding = h('x-coupler-seed') === '1'
      const lcy = await localCurrency(bc)
      for (const row of Array.isArray(req.data) ? req.data : [req.data]) {
        if (!row || typeof row !== 'object') continue
        for (const f of meta.code_fields) if (typeof row[f] === 'string') row[f] = row[f].toUpperCase()
        // The local currency's code is stored blank; any other code must be a currency
        // (TranslateCurrencyCodeToNAVCurrencyCode + Currency.Get in the pages' OnValidate).
        for (const f of meta.local_currency) {
          if (typeof row[f] !== 'string') continue
          row[f] = row[f].toUpperCase()
          if (row[f] === lcy) row[f] = ''
          else if (row[f] !== '' && !seeding && !(await SELECT.one.from(bc.entities.currencies).where({ code: row[f] })))
            return req.reject(400, 'The "currencyCode" does not match to a Currency.')
        }
        // A client's POST makes a draft (status Draft), as salesInvoices does; loaded data given
        // without a status is a posted invoice (Open).
        const draft = req.event === 'CREATE' && set === 'salesInvoices' && row.status == null
        if (seeding) {
          if (draft) row.status = 'Open'
          continue
        }
        const refused = meta.read_only.filter((f) => f in row && f !== 'id')
        if (refused.length) return req.reject(400, `The property '${refused[0]}' is read-only on ${req.target.name.split('.').pop()}.`)
        if (ROW_VERSION in row) return req.reject(400, `Could not find a property named '${ROW_VERSION}'.`)
        if (draft) row.status = 'Draft'
        // A document a client creates gets its number from the number series (the page's
        // OnInsertRecord inserts with Insert(true): InitInsert takes the next "Order Nos." /
        // "Invoice Nos." number); the client cannot send one (read-only).
        if (req.event === 'CREATE' && NUMBER_SERIES[set]) row.number = await nextNumber(bc, set)
      }
    })
    // A line written restamps its document, as Business Central's buffers do (the document's
    // totals change): that is how a reader sees lines change, the line pages having no stamp.
    bc.before(['UPDATE', 'DELETE'], '*', async (req) => {
      const meta = info.business_central[req.target?.name?.split('.').pop()]
      if (!meta?.document_set) return
      const row = await SELECT.one.from(req.subject).columns('documentId')
      req._documentId = row?.documentId
    })
    bc.after(['CREATE', 'UPDATE', 'DELETE'], '*', async (result, req) => {
      const meta = info.business_central[req.target?.name?.split('.').pop()]
      if (!meta?.document_set) return
      const ids = new Set()
      for (const r of [].concat(result || [], req.data || [])) if (r && r.documentId) ids.add(r.documentId)
      if (req._documentId) ids.add(req._documentId)
      const docs = bc.entities[meta.document_set]
      for (const id of ids) await UPDATE(docs, id).with({ lastModifiedDateTime: new Date().toISOString() })
    })
  }
})

cds.on('listening', ({ server }) => {
  // the harness (tests/http_support/cap.rs) reads this line
  process.stdout.write(`LISTENING ${server.address().port}\n`)
})

// ---------------------------------------------------------------- HTTP-level adjustments
// Top-level requests only (the sub-requests of a $batch do not pass through here):
//  - @odata.nextLink is made absolute, as both Dataverse and BC send it (CAP writes it relative to
//    the service root, e.g. `companies(<id>)/items?$skiptoken=100`). COUPLER_CAP_RELATIVE_NEXTLINK=1
//    keeps CAP's relative links.
//  - Dataverse POST/PATCH answer 204 No Content unless `Prefer: return=representation` is sent, and
//    a create carries `OData-EntityId: <absolute url of the new row>`, as Dataverse does.
const ROOTS = ['/api/data/v9.2', '/api/v2.0']
function dataverseAndBcResponses(req, res, next) {
  const root = ROOTS.find((r) => req.path === r || req.path.startsWith(r + '/'))
  if (!root) return next()
  const base = `http://${req.headers.host}${root}/`
  const dataverse = root === '/api/data/v9.2'
  // Type columns (`parentcustomeridtype`, `owneridtype`) are not Web API properties: naming one
  // in $filter, $select or $orderby is a 400 (real-api-ground-truth.md, Dataverse 1: the contact
  // EntityType has no such property); so is the hidden column that keeps a lookup's target type.
  if (dataverse && req.method === 'GET') {
    const set = req.path.slice(root.length + 1).split(/[(/]/)[0]
    const meta = info.dataverse[set]
    const query = [req.query.$filter, req.query.$select, req.query.$orderby].filter((q) => typeof q === 'string').join(' ')
    const names = meta
      ? [...meta.not_properties, ...Object.values(meta.lookups).map((l) => l.type_column).filter(Boolean)]
      : []
    const named = query.match(/\b[A-Za-z_][A-Za-z0-9_]*\b/g) || []
    const wrong = named.find((n) => names.includes(n)) || named.find((n) => /^[a-z_]+idtype$/.test(n))
    if (wrong) {
      res.status(400).json({
        error: {
          code: '0x80060888',
          message: `Could not find a property named '${wrong}' on type 'Microsoft.Dynamics.CRM.${meta?.logical || set}'.`,
        },
      })
      return
    }
  }
  if (!dataverse && LCY === null) {
    localCurrency(cds.services.BusinessCentralService).then(() => dataverseAndBcResponses(req, res, next), next)
    return
  }
  if (dataverse && req.method === 'POST' && req.path.endsWith('/$batch') && /multipart\/mixed/i.test(req.headers['content-type'] || ''))
    req._coupler_dataverse_batch = true
  if (!dataverse && businessCentralRequest(req, res, root)) return
  if (dataverse && (req.method === 'POST' || req.method === 'PATCH') && !req.path.endsWith('/$batch')) {
    const prefer = req.headers.prefer || ''
    if (!/return=representation/i.test(prefer)) req.headers.prefer = prefer ? `${prefer},return=minimal` : 'return=minimal'
  }
  if (dataverse) {
    const setHeader = res.setHeader.bind(res)
    res.setHeader = (name, value) => {
      if (String(name).toLowerCase() === 'location' && typeof value === 'string' && !/^https?:/.test(value))
        setHeader('OData-EntityId', base + value)
      return setHeader(name, value)
    }
  }
  if (process.env.COUPLER_CAP_RELATIVE_NEXTLINK !== '1') {
    const json = res.json.bind(res)
    res.json = (body) => {
      const link = body && typeof body === 'object' && body['@odata.nextLink']
      if (typeof link === 'string' && !/^https?:/.test(link)) body['@odata.nextLink'] = base + link
      return json(body)
    }
  }
  next()
}

// Business Central's line pages (requires_filter in the recorded pages): a read of the collection
// must filter on exactly one `id` or `documentId` (APIV2SalesOrderLines / APIV2SalesInvoiceLines
// OnFindRecord in microsoft/BCApps c3414ede: one GUID, several ids fail). The hidden row version
// is no property: refused in a query, stripped from every answer. Returns true when answered.
function businessCentralRequest(req, res, root) {
  const rest = req.path.slice(root.length + 1)
  const set = rest.split('/').pop().split('(')[0]
  const meta = info.business_central[set]
  const query = [req.query.$filter, req.query.$select, req.query.$orderby].filter((q) => typeof q === 'string').join(' ')
  if (meta?.row_version && query.includes(ROW_VERSION)) {
    res.status(400).json({ error: { code: 'BadRequest', message: `Could not find a property named '${ROW_VERSION}'.` } })
    return true
  }
  const byKey = /\([^)]*\)$/.test(rest.split('/').pop())
  if (req.method === 'GET' && meta?.requires_filter?.length && !byKey) {
    const f = typeof req.query.$filter === 'string' ? req.query.$filter : ''
    const names = meta.requires_filter.join('|')
    const hits = f.match(new RegExp(`\\b(${names}) eq [0-9a-fA-F-]{36}`, 'g')) || []
    if (hits.length !== 1 || /\bor\b/.test(f)) {
      res.status(400).json({ error: { code: 'BadRequest', message: 'You must specify an Id or a Document Id to get the lines.' } })
      return true
    }
  }
  const json = res.json.bind(res)
  res.json = (body) => json(blankAsLocalCurrency(stripRowVersion(body)))
  return false
}

// The local currency (General Ledger Setup's LCY Code, shown as companyInformation.currencyCode),
// read once from the seeded company information (db/data/bc-companyInformation.csv).
let LCY = null
async function localCurrency(bc) {
  if (LCY === null) {
    const row = await SELECT.one.from(bc.entities.companyInformation).columns('currencyCode')
    LCY = row?.currencyCode || ''
  }
  return LCY
}

// A blank currency code reads as the local currency's code (customers, vendors, salesOrders,
// salesInvoices: GraphMgtGeneralTools.TranslateNAVCurrencyCodeToCurrencyCode in microsoft/BCApps).
const LOCAL_CURRENCY = new Set(Object.values(info.business_central).flatMap((m) => m.local_currency))
function blankAsLocalCurrency(body) {
  if (!body || typeof body !== 'object') return body
  if (Array.isArray(body)) return body.map(blankAsLocalCurrency)
  for (const f of LOCAL_CURRENCY) if (f in body && !body[f]) body[f] = LCY
  for (const k of ['value', 'responses']) if (Array.isArray(body[k])) body[k].forEach(blankAsLocalCurrency)
  if (body.body && typeof body.body === 'object') blankAsLocalCurrency(body.body)
  return body
}

function stripRowVersion(body) {
  if (!body || typeof body !== 'object') return body
  if (Array.isArray(body)) return body.map(stripRowVersion)
  delete body[ROW_VERSION]
  for (const k of ['value', 'responses']) if (Array.isArray(body[k])) body[k].forEach(stripRowVersion)
  if (body.body && typeof body.body === 'object') stripRowVersion(body.body)
  return body
}

// Number series of the documents a client creates (Sales & Receivables Setup's "Order Nos." and
// "Invoice Nos."). The prefixes and starting numbers are the imitation's own, not recorded from
// a company; a number a loaded row already holds is skipped.
const NUMBER_SERIES = { salesOrders: ['S-ORD', 101001], salesInvoices: ['S-INV', 102001] }
const NEXT_NUMBER = {}
async function nextNumber(bc, set) {
  const [prefix, start] = NUMBER_SERIES[set]
  for (;;) {
    NEXT_NUMBER[set] = (NEXT_NUMBER[set] ?? start - 1) + 1
    const number = `${prefix}${NEXT_NUMBER[set]}`
    if (!(await SELECT.one.from(bc.entities[set]).where({ number }))) return number
  }
}

// ---------------------------------------------------------------- option sets (Metadata API)
// InsertOptionValue (MicrosoftDocs/powerapps-docs, Web API reference "InsertOptionValue Action"):
// POST /api/data/v9.2/InsertOptionValue { EntityLogicalName, AttributeLogicalName,
// Label: { LocalizedLabels: [{ Label, LanguageCode }] }, Value? } answers
// InsertOptionValueResponse { NewOptionValue }. A label or value the set has already is refused
// (400; the error code is Dataverse's generic invalid-argument one, not recorded from a real
// answer). New values without `Value` start at the default publisher's prefix: 100000000.
// The column's options are read back as the attribute's OptionSet (PicklistAttributeMetadata).
const OPTION_SETS = {}
function optionSet(logical, attribute) {
  const set = Object.keys(info.dataverse).find((s) => info.dataverse[s].logical === logical)
  const choices = set && (info.dataverse[set].choices || {})[attribute]
  if (!choices) return null
  const key = `${logical}.${attribute}`
  if (!OPTION_SETS[key]) OPTION_SETS[key] = Object.entries(choices).map(([v, l]) => ({ value: Number(v), label: l }))
  return OPTION_SETS[key]
}
function metadataError(res, message) {
  res.status(400).json({ error: { code: '0x80040203', message } })
}
function insertOptionValue(req, res) {
  const b = req.body || {}
  const label = b.Label?.LocalizedLabels?.[0]?.Label
  if (typeof b.EntityLogicalName !== 'string' || typeof b.AttributeLogicalName !== 'string' || typeof label !== 'string' || !label)
    return metadataError(res, 'InsertOptionValue needs EntityLogicalName, AttributeLogicalName and a Label with a LocalizedLabel.')
  const options = optionSet(b.EntityLogicalName, b.AttributeLogicalName)
  if (!options)
    return metadataError(res, `The attribute ${b.AttributeLogicalName} of entity ${b.EntityLogicalName} is not a picklist attribute.`)
  if (options.some((o) => o.label.toLowerCase() === label.toLowerCase()))
    return metadataError(res, `An option with the label '${label}' already exists in the option set of ${b.EntityLogicalName}.${b.AttributeLogicalName}.`)
  let value = b.Value
  if (value != null && (!Number.isInteger(value) || options.some((o) => o.value === value)))
    return metadataError(res, `The value ${value} is already used by an option of ${b.EntityLogicalName}.${b.AttributeLogicalName}.`)
  if (value == null) value = Math.max(99999999, ...options.map((o) => o.value)) + 1
  options.push({ value, label })
  res.status(200).json({
    '@odata.context': `http://${req.headers.host}/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.InsertOptionValueResponse`,
    NewOptionValue: value,
  })
}
const PICKLIST = /^\/api\/data\/v9\.2\/EntityDefinitions\(LogicalName='([^']+)'\)\/Attributes\(LogicalName='([^']+)'\)\/Microsoft\.Dynamics\.CRM\.PicklistAttributeMetadata$/
function picklistMetadata(req, res) {
  const [, logical, attribute] = req.path.match(PICKLIST)
  const options = optionSet(logical, attribute)
  if (!options) return res.status(404).json({ error: { code: '0x80040217', message: `Could not find attribute ${attribute} of entity ${logical}.` } })
  const text = (l) => ({ LocalizedLabels: [{ Label: l, LanguageCode: 1033 }], UserLocalizedLabel: { Label: l, LanguageCode: 1033 } })
  res.status(200).json({
    LogicalName: attribute,
    OptionSet: { Options: options.map((o) => ({ Value: o.value, Label: text(o.label) })) },
  })
}

// ---------------------------------------------------------------- custom server: loopback only
// cds.server calls app.listen(port) without a host, which binds all interfaces.
module.exports = (o) => {
  const app = express()
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, '127.0.0.1', ...rest)
  app.post('/api/data/v9.2/InsertOptionValue', express.json(), insertOptionValue)
  app.get(PICKLIST, picklistMetadata)
  app.use(dataverseAndBcResponses)
  o.app = app
  return cds.server(o)
}

if (require.main === module) {
  process.chdir(__dirname)
  if (process.env.PORT === undefined || process.env.PORT === '') process.env.PORT = '0'
  if (process.env.COUPLER_EXIT_ON_STDIN_EOF === '1') {
    process.stdin.on('end', () => process.exit(0))
    process.stdin.on('error', () => process.exit(0))
    process.stdin.resume()
  }
  // `cds serve all --in-memory`: deploys the model and db/data/*.csv into the in-memory database,
  // then bootstraps through this file's export (cds picks up ./server.js).
  require('@sap/cds/bin/serve')([], { 'in-memory': true }).catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
