//! Proves the CAP test servers (tests/servers/cap, harness tests/http_support/cap.rs) behave as
//! tests/servers/cap/README.md says, over real HTTP with reqwest.
use crate::support::http as http_support;

use http_support::cap::{
    CapServer, COMPANY_ID, COMPANY_NAME, DEFAULT_USER_ID, SEED_HEADER, USER_HEADER,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

const INTEGRATION_USER: &str = "aaaaaaaa-0000-0000-0000-000000000001";

fn client() -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("Accept", "application/json".parse().unwrap());
    headers.insert("OData-MaxVersion", "4.0".parse().unwrap());
    headers.insert("OData-Version", "4.0".parse().unwrap());
    Client::builder().default_headers(headers).build().unwrap()
}

async fn body(resp: Response) -> Value {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "HTTP {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn get(c: &Client, url: &str) -> Value {
    body(c.get(url).send().await.unwrap()).await
}

fn etag(v: &Value) -> String {
    v["@odata.etag"].as_str().expect("@odata.etag").to_string()
}

#[tokio::test]
async fn dataverse_create_read_update() {
    let cap = CapServer::start();
    let c = client();
    let dv = cap.dataverse_url();

    // a team to own the account, through @odata.bind
    let team = "bbbbbbbb-0000-0000-0000-000000000001";
    let r = c
        .post(format!("{dv}/teams"))
        .json(&json!({"teamid": team, "name": "Sales"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // create: 204 + OData-EntityId, like Dataverse; the client may choose the key
    let id = "0a000000-0000-0000-0000-000000000001";
    let r = c
        .post(format!("{dv}/accounts"))
        .header(USER_HEADER, INTEGRATION_USER)
        .json(&json!({
            "accountid": id,
            "name": "Adatum",
            "accountnumber": "C10000",
            "customertypecode": 3,
            "creditlimit": 1500.5,
            "ownerid@odata.bind": format!("/teams({team})"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{}", cap.log());
    let entity_id = r.headers()["OData-EntityId"].to_str().unwrap().to_string();
    assert_eq!(entity_id, format!("{dv}/accounts({id})"));

    // `owneridtype` is no Web API property: naming it in $select is a 400, as on Dataverse
    let r = c
        .get(format!(
            "{dv}/accounts?$select=name,_ownerid_value,owneridtype"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Could not find a property named 'owneridtype'"),
        "{text}"
    );

    // read back with $select and $filter; the owner's type comes as the lookuplogicalname
    // annotation when Prefer asks for it
    let list = body(
        c.get(format!("{dv}/accounts?$select=name,accountnumber,creditlimit,_ownerid_value,_modifiedby_value&$filter=accountnumber eq 'C10000'"))
            .header(
                "Prefer",
                "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\"",
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    let rows = list["value"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["accountid"], id);
    assert_eq!(row["name"], "Adatum");
    assert_eq!(row["creditlimit"], 1500.5);
    assert_eq!(row["_ownerid_value"], team);
    assert_eq!(
        row["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "team"
    );
    assert_eq!(
        row["_modifiedby_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "systemuser"
    );
    assert!(row.get("owneridtype").is_none());
    assert!(row.get("_ownerid_value_type").is_none());
    assert_eq!(row["_modifiedby_value"], INTEGRATION_USER);
    assert!(row["modifiedon"].is_string());
    let tag = etag(row);

    // update with If-Match: 204; the row now carries the other user's id
    let r = c
        .patch(&entity_id)
        .header("If-Match", &tag)
        .json(&json!({"telephone1": "+1 425 555 0100"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after = get(
        &c,
        &format!("{entity_id}?$select=telephone1,_modifiedby_value"),
    )
    .await;
    assert_eq!(after["telephone1"], "+1 425 555 0100");
    assert_eq!(after["_modifiedby_value"], DEFAULT_USER_ID);
    assert_ne!(etag(&after), tag);

    // the old etag is stale: 412
    let r = c
        .patch(&entity_id)
        .header("If-Match", &tag)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    // no If-Match: applies unconditionally, as in Dataverse
    let r = c
        .patch(&entity_id)
        .json(&json!({"name": "Adatum Corporation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Prefer: return=representation gives the row back
    let r = c
        .patch(&entity_id)
        .header("Prefer", "return=representation")
        .json(&json!({"statecode": 1, "statuscode": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["name"], "Adatum Corporation");

    // WhoAmI answers with the user header
    let who = body(
        c.get(format!("{dv}/WhoAmI()"))
            .header(USER_HEADER, INTEGRATION_USER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(who["UserId"], INTEGRATION_USER);

    // delete
    let r = c.delete(&entity_id).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c.get(&entity_id).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn load_accounts(c: &Client, dv: &str, n: usize) {
    let requests: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": i.to_string(), "method": "POST", "url": "accounts",
                   "headers": {"content-type": "application/json"},
                   "body": {"name": format!("Account {i:04}")}})
        })
        .collect();
    let resp = body(
        c.post(format!("{dv}/$batch"))
            .json(&json!({ "requests": requests }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let responses = resp["responses"].as_array().unwrap();
    assert_eq!(responses.len(), n);
    assert!(responses.iter().all(|r| r["status"] == 201), "{resp}");
}

async fn page_through(c: &Client, service_root: &str, first: &str) -> (usize, usize, Vec<String>) {
    let root = url::Url::parse(&format!("{service_root}/")).unwrap();
    let mut next = Some(root.join(first).unwrap());
    let (mut rows, mut pages, mut links) = (0, 0, Vec::new());
    while let Some(url) = next.take() {
        let page = get(c, url.as_str()).await;
        rows += page["value"].as_array().unwrap().len();
        pages += 1;
        if let Some(link) = page["@odata.nextLink"].as_str() {
            links.push(link.to_string());
            // absolute links replace the base; relative ones are relative to the service root
            next = Some(root.join(link).unwrap());
        }
    }
    (rows, pages, links)
}

#[tokio::test]
async fn dataverse_paging_follows_next_link() {
    let cap = CapServer::start();
    let c = client();
    let dv = cap.dataverse_url();
    load_accounts(&c, &dv, 250).await;
    let (rows, pages, links) = page_through(&c, &dv, "accounts?$select=name").await;
    assert_eq!((rows, pages), (250, 3));
    // absolute, like Dataverse's
    assert!(
        links[0].starts_with(&format!("{dv}/accounts?")),
        "{links:?}"
    );
}

#[tokio::test]
async fn relative_next_links_on_request() {
    let cap = CapServer::start_with_env(&[("COUPLER_CAP_RELATIVE_NEXTLINK", "1")]);
    let c = client();
    let dv = cap.dataverse_url();
    load_accounts(&c, &dv, 250).await;
    let (rows, pages, links) = page_through(&c, &dv, "accounts?$select=name").await;
    assert_eq!((rows, pages), (250, 3));
    assert!(links[0].starts_with("accounts?"), "{links:?}");
}

#[tokio::test]
async fn dataverse_metadata_is_served() {
    let cap = CapServer::start();
    // CAP answers CSDL JSON to `Accept: application/json`; Dataverse only serves XML
    let r = client()
        .get(format!("{}/$metadata", cap.dataverse_url()))
        .header("Accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let xml = r.text().await.unwrap();
    for set in [
        "accounts",
        "contacts",
        "systemusers",
        "transactioncurrencies",
        "salesorderdetails",
    ] {
        assert!(
            xml.contains(&format!("EntitySet Name=\"{set}\"")),
            "no entity set {set}"
        );
    }
    assert!(xml.contains("Name=\"_ownerid_value\""));
    assert!(xml.contains("Name=\"parentcustomerid_account\""));
}

#[tokio::test]
async fn business_central_customers_under_the_company() {
    let cap = CapServer::start();
    let c = client();
    let bc = cap.business_central_url();

    let companies = get(&c, &format!("{bc}/companies")).await;
    let list = companies["value"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], COMPANY_ID);
    assert_eq!(list[0]["name"], COMPANY_NAME);
    assert_eq!(cap.company_id(), COMPANY_ID);

    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let customers = format!("{}/customers", cap.company_url());
    let r = c
        .post(&customers)
        // Enum members travel by their OData name: the blank member is `_x0020_`.
        .json(&json!({"number": "c10000", "displayName": "Adatum", "blocked": "_x0020_", "taxLiable": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created = body(r).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["number"], "C10000"); // Code fields are upper-cased
    assert_eq!(created["type"], "Company"); // option default: the first member
    assert!(created["lastModifiedDateTime"].is_string());

    let one = format!("{customers}({id})");
    let got = get(&c, &format!("{one}?$select=number,displayName")).await;
    assert_eq!(got["displayName"], "Adatum");

    // BC requires If-Match on PATCH: 428 without it
    let r = c
        .patch(&one)
        .json(&json!({"displayName": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_REQUIRED);
    let r = c
        .patch(&one)
        .header("If-Match", etag(&got))
        .json(&json!({"displayName": "Adatum Corp", "blocked": "All"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let patched = body(r).await;
    assert_eq!(patched["blocked"], "All");
    assert_ne!(etag(&patched), etag(&got));
    // an option value that is not a member: 400
    let r = c
        .patch(&one)
        .header("If-Match", "*")
        .json(&json!({"blocked": "Nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // change detection by lastModifiedDateTime
    let ts = before.format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let changed = get(
        &c,
        &format!("{customers}?$filter=lastModifiedDateTime gt {ts}&$select=number"),
    )
    .await;
    assert_eq!(changed["value"].as_array().unwrap().len(), 1);
    let none = get(
        &c,
        &format!("{customers}?$filter=lastModifiedDateTime gt 2999-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(none["value"].as_array().unwrap().len(), 0);

    let r = c
        .delete(&one)
        .header("If-Match", etag(&patched))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn business_central_json_batch() {
    let cap = CapServer::start();
    let c = client();
    let bc = cap.business_central_url();
    let company = format!("companies({COMPANY_ID})");
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": format!("{company}/items"),
         "headers": {"content-type": "application/json"},
         "body": {"number": "1000", "displayName": "Bicycle", "type": "Inventory", "unitPrice": 4000}},
        {"id": "2", "method": "POST", "url": format!("{company}/items"),
         "headers": {"content-type": "application/json"},
         "body": {"number": "1001", "displayName": "Touring Bicycle", "unitPrice": 5000}},
        {"id": "3", "method": "GET", "url": format!("{company}/items?$filter=unitPrice gt 4500&$select=number"),
         "dependsOn": ["1", "2"]},
    ]});
    let r = c
        .post(format!("{bc}/$batch"))
        .header("Isolation", "snapshot")
        .json(&batch)
        .send()
        .await
        .unwrap();
    let resp = body(r).await;
    let responses = resp["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 3, "{resp}");
    assert_eq!(responses[0]["status"], 201);
    assert_eq!(responses[1]["status"], 201);
    assert_eq!(responses[2]["status"], 200);
    let found = responses[2]["body"]["value"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["number"], "1001");
}

#[tokio::test]
async fn dataverse_patch_is_an_upsert_with_dataverse_conditions() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let c = client();
    let dv = cap.dataverse_url();
    let url = |n: u8| format!("{dv}/accounts(0a000000-0000-4000-8000-0000000000{n:02})");
    let patch = |u: String, header: Option<(&'static str, &'static str)>, name: &'static str| {
        let mut b = c.patch(u).header(USER_HEADER, INTEGRATION_USER);
        if let Some((k, v)) = header {
            b = b.header(k, v);
        }
        b.json(&json!({ "name": name })).send()
    };
    let status = |r: Result<Response, reqwest::Error>| r.unwrap().status();
    // No condition: creates a missing row, updates an existing one.
    assert_eq!(
        status(patch(url(1), None, "one").await),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status(patch(url(1), None, "one b").await),
        StatusCode::NO_CONTENT
    );
    // If-Match: * never creates (404), updates an existing row.
    let r = patch(url(2), Some(("If-Match", "*")), "two").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        status(patch(url(1), Some(("If-Match", "*")), "one c").await),
        StatusCode::NO_CONTENT
    );
    // If-None-Match: * never updates (412), creates a missing row.
    assert_eq!(
        status(patch(url(1), Some(("If-None-Match", "*")), "x").await),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        status(patch(url(3), Some(("If-None-Match", "*")), "three").await),
        StatusCode::NO_CONTENT
    );
    let rows = get(&c, &format!("{dv}/accounts?$select=name&$orderby=name")).await;
    let names: Vec<&str> = rows["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["one c", "three"]);
    let one = get(&c, &format!("{}?$select=_createdby_value", url(1))).await;
    assert_eq!(one["_createdby_value"], INTEGRATION_USER);
}

/// The Dataverse imitation refuses what the recorded reference does not allow
/// (tests/servers/cap/README.md, "Writes the reference does not allow"), bare dates in
/// DateTimeOffset columns, and relative `$batch` request lines.
#[tokio::test]
async fn dataverse_refuses_what_the_reference_does_not_allow() {
    let cap = CapServer::start();
    let c = client();
    let dv = cap.dataverse_url();
    let status = |r: Response| r.status();
    let post = |set: &str, v: Value| c.post(format!("{dv}/{set}")).json(&v).send();

    // read-only: fullname; update-only on create: statecode
    let r = post("contacts", json!({"lastname": "L", "fullname": "F L"})).await;
    assert_eq!(status(r.unwrap()), StatusCode::BAD_REQUEST);
    let r = post("contacts", json!({"lastname": "L", "statecode": 1})).await;
    assert_eq!(status(r.unwrap()), StatusCode::BAD_REQUEST);
    // ... unless seeding
    let r = c
        .post(format!("{dv}/contacts"))
        .header(SEED_HEADER.0, SEED_HEADER.1)
        .json(&json!({"lastname": "L", "fullname": "F L"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // create-only: invoicenumber, on create fine, on update a 400
    let inv = "0c000000-0000-0000-0000-000000000001";
    let r = post(
        "invoices",
        json!({"invoiceid": inv, "name": "I", "invoicenumber": "INV-1"}),
    )
    .await;
    assert_eq!(status(r.unwrap()), StatusCode::NO_CONTENT);
    let r = c
        .patch(format!("{dv}/invoices({inv})"))
        .json(&json!({"invoicenumber": "INV-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // DateTimeOffset (DateOnly/UserLocal too) takes no bare date; Date takes no date-time
    let r = post(
        "salesorders",
        json!({"name": "O", "requestdeliveryby": "2026-12-03"}),
    )
    .await;
    let r = r.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let text = r.text().await.unwrap();
    assert!(text.contains("Edm.DateTimeOffset"), "{text}");
    let r = post(
        "salesorders",
        json!({"name": "O", "requestdeliveryby": "2026-12-03T00:00:00Z"}),
    )
    .await;
    assert_eq!(status(r.unwrap()), StatusCode::NO_CONTENT);
    let r = post(
        "invoices",
        json!({"name": "I", "duedate": "2026-12-03T10:00:00Z"}),
    )
    .await;
    assert_eq!(status(r.unwrap()), StatusCode::BAD_REQUEST);

    // $batch request lines: the absolute path works, a relative one fails the whole batch
    let batch = |line: &str| {
        format!(
            "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
             {line} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{{\"name\":\"B\"}}\r\n--b--\r\n"
        )
    };
    for (line, want) in [
        ("POST /api/data/v9.2/accounts".to_string(), StatusCode::OK),
        (format!("POST {dv}/accounts"), StatusCode::OK),
        ("POST accounts".to_string(), StatusCode::BAD_REQUEST),
    ] {
        let r = c
            .post(format!("{dv}/$batch"))
            .header("Content-Type", "multipart/mixed; boundary=b")
            .body(batch(&line))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{line}");
    }
    let names = get(&c, &format!("{dv}/accounts?$select=name")).await;
    assert_eq!(names["value"].as_array().unwrap().len(), 2, "{names}");
}
