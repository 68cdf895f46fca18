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

const ROW_VERSION = 'systemRowVersion' // hidden etag of the line pages, never shown (gen_cds.py)
const DEFAULT_USER = '11111111-1111-1111-1111-111111111111' // modifiedby when no user header is sent
const BUSINESS_UNIT = '22222222-2222-2222-2222-222222222222'
const ORGANIZATION = '33333333-3333-3333-3333-333333333333'

// ---------------------------------------------------------------- Dataverse lookups (@odata.bind)
// CAP resolves `<nav>@odata.bind` itself but keeps only the key, not the entity set, so a
// polymorphic owner (`ownerid@odata.bind: "/teams(<id>)"`) could not be told from a systemuser.
// Wrap CAP's odataBind (used by POST, PATCH, PUT, and inside both $batch formats) and turn every
// Dataverse binding into the lookup column `_<field>_value` (+ `<field>type` where the table has it).
const cdsDir = path.dirname(require.resolve('@sap/cds/package.json'))
const bindFile = path.join(cdsDir, 'libx/odata/utils/odataBind.js')
const odataBind = require(bindFile)
require.cache[bindFile].exports = function coupler_odataBind(data, target) {
  if (target?.name?.startsWith('DataverseService.')) {
    const set = target.name.slice('DataverseService.'.length)
    for (const row of Array.isArray(data) ? data : [data]) dataverseBind(row, set)
  }
  return odataBind(data, target)
}

function badRequest(message) {
  return Object.assign(new Error(message), { statusCode: 400, status: 400 })
}

function dataverseBind(row, set) {
  const meta = info.dataverse[set]
  if (!row || typeof row !== 'object' || !meta) return
  for (const prop of Object.keys(row)) {
    const m = prop.match(/^(.+)@odata\.bind$/)
    if (!m) continue
    const nav = m[1]
    let field = meta.lookups[nav] ? nav : null
    let wanted = null // logical name implied by a polymorphic nav name (parentcustomerid_account)
    // Recorded tables bind only through the navigation properties Microsoft's reference names
    // (tests/servers/api/dataverse): `parentcustomerid_account`, `ownerid`, a custom `msdyn_Project`.
    if (meta.navs) {
      const n = meta.navs[nav]
      if (!n) throw badRequest(`${set}: an undeclared navigation property '${nav}' was found (for ${prop})`)
      field = meta.lookups[n.field] ? n.field : null
      if (n.sets.length === 1) wanted = n.sets[0]
    }
    if (!field) {
      for (const [f, l] of Object.entries(meta.lookups)) {
        for (const [tset, logical] of Object.entries(l.targets)) {
          if (nav === `${f}_${logical}`) { field = f; wanted = tset }
        }
      }
    }
    if (!field) throw badRequest(`${set}: no lookup named ${nav} (for ${prop})`)
    const lookup = meta.lookups[field]
    const value = row[prop]
    delete row[prop]
    if (value === null) {
      row[lookup.column] = null
      continue
    }
    const r = typeof value === 'string' && value.match(/([A-Za-z_][A-Za-z0-9_]*)\(([0-9a-fA-F-]{36})\)\s*$/)
    if (!r) throw badRequest(`${set}: ${prop} must look like "<entityset>(<guid>)", got ${JSON.stringify(value)}`)
    const [, tset, id] = r
    if (!lookup.targets[tset] || (wanted && tset !== wanted))
      throw badRequest(`${set}: ${prop} cannot refer to ${tset} (allowed: ${wanted || Object.keys(lookup.targets).join(', ')})`)
    row[lookup.column] = id.toLowerCase()
    // Only polymorphic lookups (ownerid, parentcustomerid, customerid) have a `<field>type` column.
    if (Object.keys(lookup.targets).length > 1) row[`${field}type`] = lookup.targets[tset]
  }
}

// The key columns of a request's target row, from its URL (`accounts(<id>)`).
function keysOf(req) {
  const last = req.params.at(-1)
  if (last && typeof last === 'object') return last
  const key = Object.keys(req.target.keys).find((k) => !req.target.keys[k].isAssociation)
  return { [key]: last }
}

function userOf(req) {
  const h = (n) => req.headers?.[n] ?? req.req?.headers?.[n] ?? cds.context?.http?.req?.headers?.[n]
  return h('x-coupler-user') || h('mscrmcallerid') || null
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
          await dv.create(req.target).entries({ ...req.data, ...keysOf(req) })
          delete h['if-none-match']
        }
      }
      if (!h['if-match'] && !h['if-none-match']) h['if-match'] = '*'
    }
    dataverseConditions._initial = true // run with (before) CAP's own etag check, an "initial" handler
    dv.prepend(() => dv.before(['UPDATE', 'DELETE'], '*', dataverseConditions))
    dv.before(['CREATE', 'UPDATE', 'UPSERT'], '*', (req) => {
      const set = req.target?.name?.split('.').pop()
      const meta = info.dataverse[set]
      if (!meta) return
      const elements = req.target.elements
      for (const row of Array.isArray(req.data) ? req.data : [req.data]) {
        if (!row || typeof row !== 'object') continue
        // drop `<field>type` set by dataverseBind where the table has no such column
        for (const k of Object.keys(row)) if (k.endsWith('type') && !elements[k]) delete row[k]
        const user = userOf(req) || row._modifiedby_value || DEFAULT_USER
        if (meta.has_modifiedby) row._modifiedby_value = user
        if (req.event === 'CREATE' && meta.has_createdby) row._createdby_value = userOf(req) || row._createdby_value || user
        // Dataverse computes fullname (contacts, systemusers) on create
        if (req.event === 'CREATE' && elements.fullname && row.fullname == null && (row.firstname || row.lastname))
          row.fullname = [row.firstname, row.lastname].filter(Boolean).join(' ')
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
  // Type columns (`parentcustomeridtype`, `owneridtype`) are not Web API properties: a $filter on
  // one is a 400 (real-api-ground-truth.md, Dataverse 1: the contact EntityType has no such property).
  if (dataverse && req.method === 'GET' && typeof req.query.$filter === 'string') {
    const typeColumn = req.query.$filter.match(/\b([a-z_]+idtype)\b/)
    if (typeColumn) {
      const set = req.path.slice(root.length + 1).split(/[(/]/)[0]
      res.status(400).json({
        error: {
          code: '0x80060888',
          message: `Could not find a property named '${typeColumn[1]}' on type 'Microsoft.Dynamics.CRM.${set}'.`,
        },
      })
      return
    }
  }
  if (!dataverse && LCY === null) {
    localCurrency(cds.services.BusinessCentralService).then(() => dataverseAndBcResponses(req, res, next), next)
    return
  }
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

// ---------------------------------------------------------------- custom server: loopback only
// cds.server calls app.listen(port) without a host, which binds all interfaces.
module.exports = (o) => {
  const app = express()
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, '127.0.0.1', ...rest)
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
