//! Issue 6 (partial): item availability (negative inventory written as 0) and sales orders from
//! Sales (SALESORDER-FROMSALES and its lines), end to end with the real `coupler` binary on the
//! standard mapping set and two embedded systems.

#[path = "sync_support/mod.rs"]
mod sync_support;

use serde_json::{json, Value};
use sync_support::{standard_map, Project};

const CUSTOMER_ID: &str = "c0000000-0000-4000-8000-000000000001";
const ITEM_ID: &str = "c0000000-0000-4000-8000-000000000002";
const ACCOUNT: &str = "a0000000-0000-4000-8000-000000000001";
const PRODUCT: &str = "b0000000-0000-4000-8000-000000000001";
const SUBMITTED: &str = "d0000000-0000-4000-8000-000000000001";
const ACTIVE: &str = "d0000000-0000-4000-8000-000000000002";

/// The standard set with sales orders from Sales switched on.
fn with_sales_orders() -> String {
    let map = standard_map();
    let on = map.replacen(
        "create_sales_orders        = false",
        "create_sales_orders        = true",
        1,
    );
    assert_ne!(
        map, on,
        "the standard set no longer has `create_sales_orders = false`"
    );
    on
}

fn bc_item(inventory: f64) -> Value {
    json!({ "Item": [
        { "No.": "1000", "Description": "Bicycle", "Unit Price": 400, "Inventory": inventory }
    ]})
}

/// The standard set with ITEM-AVAILABILITY switched on.
fn with_item_availability() -> String {
    let map = standard_map();
    let on = map.replacen(
        "item_availability          = false",
        "item_availability          = true",
        1,
    );
    assert_ne!(
        map, on,
        "the standard set no longer has `item_availability = false`"
    );
    on
}

#[test]
fn negative_inventory_reaches_sales_as_zero() {
    let p = Project::with_map_text(&with_item_availability(), bc_item(-5.0), json!({}));
    let o = p.run_ok(&["--full"]);
    assert_eq!(o.counts("ITEM-PRODUCT", "->").inserted, 1, "{:#}", o.report);
    let product = p.find("sales.product", "productnumber", "1000");
    assert_eq!(product["quantityonhand"], json!(0), "{product:#?}");
    // ITEM-AVAILABILITY runs after ITEM-PRODUCT and couples to the same product (no duplicate).
    let av = o.mapping_total("ITEM-AVAILABILITY");
    assert_eq!(
        (av.inserted, av.modified, av.coupled),
        (0, 0, 1),
        "{:#}",
        o.report
    );
    assert_eq!(p.show("sales.product").len(), 1);
    let order = o.mapping_order();
    let at = |m: &str| order.iter().position(|x| x == m).unwrap_or(usize::MAX);
    assert!(at("ITEM-PRODUCT") < at("ITEM-AVAILABILITY"), "{order:?}");
}

#[test]
fn positive_inventory_passes_unchanged() {
    let p = Project::standard(bc_item(12.5), json!({}));
    let o = p.run_ok(&["--full"]);
    assert_eq!(
        o.mapping_total("ITEM-AVAILABILITY").writes(),
        0,
        "off by default"
    );
    let product = p.find("sales.product", "productnumber", "1000");
    assert_eq!(product["quantityonhand"], json!(12.5), "{product:#?}");
}

/// A customer and an item coupled to their Sales counterparts, a submitted order and an active
/// (not submitted) order; `lines` adds one line to each order.
fn orders_project(map: &str, lines: bool) -> Project {
    let details = if lines {
        json!([
            { "salesorderid": SUBMITTED, "productid": PRODUCT, "sequencenumber": 10000,
              "quantity": 3, "priceperunit": 390 },
            { "salesorderid": ACTIVE, "productid": PRODUCT, "sequencenumber": 10000,
              "quantity": 1, "priceperunit": 400 }
        ])
    } else {
        json!([])
    };
    Project::with_map_text(
        map,
        json!({
            "Customer": [{ "No.": "C1", "Name": "Alpha", "SystemId": CUSTOMER_ID }],
            "Item": [{ "No.": "1000", "Description": "Bicycle", "Unit Price": 400,
                       "SystemId": ITEM_ID }]
        }),
        json!({
            "account": [{ "accountid": ACCOUNT, "name": "Alpha", "customertypecode": "Customer",
                          "statecode": "Active" }],
            "product": [{ "productid": PRODUCT, "productnumber": "1000", "name": "Bicycle",
                          "producttypecode": "Sales Inventory", "statecode": "Active" }],
            "salesorder": [
                { "salesorderid": SUBMITTED, "name": "PO-4711 Alpha bikes", "ordernumber": "ORD-01001",
                  "customerid": ACCOUNT, "customeridtype": "account", "statecode": "Submitted",
                  "shipto_city": "Seattle" },
                { "salesorderid": ACTIVE, "name": "Draft order", "ordernumber": "ORD-01002",
                  "customerid": ACCOUNT, "customeridtype": "account", "statecode": "Active" }
            ],
            "salesorderdetail": details
        }),
    )
}

fn couple(p: &Project, mapping: &str, left: &str, right: &str) {
    let map = p.map_arg();
    let out = p.coupler(&[
        "couple",
        "--profile",
        sync_support::PROFILE,
        &map,
        "--mapping",
        mapping,
        "--left",
        left,
        "--right",
        right,
    ]);
    assert_eq!(
        sync_support::code(&out),
        0,
        "couple {mapping}: {}",
        sync_support::stderr(&out)
    );
}

/// Couples customer C1 with account Alpha and item 1000 with its product (ordinary runs).
fn couple_customer_and_item(p: &Project) {
    p.load_systems();
    couple(p, "CUSTOMER", CUSTOMER_ID, ACCOUNT);
    couple(p, "ITEM-PRODUCT", ITEM_ID, PRODUCT);
}

#[test]
fn sales_orders_from_sales_are_off_by_default() {
    let p = orders_project(&standard_map(), true);
    couple_customer_and_item(&p);
    let o = p.run_ok(&[]);
    assert_eq!(o.mapping_total("SALESORDER-FROMSALES").writes(), 0);
    assert_eq!(o.mapping_total("SALESORDERLINE-FROMSALES").writes(), 0);
    assert!(p.show("bc.Sales Header").is_empty());
    assert!(p.show("bc.Sales Line").is_empty());
}

#[test]
fn a_submitted_sales_order_becomes_a_business_central_order() {
    let p = orders_project(&with_sales_orders(), false);
    couple_customer_and_item(&p);
    let o = p.run_ok(&[]);
    assert_eq!(
        o.counts("SALESORDER-FROMSALES", "<-").inserted,
        1,
        "{:#}",
        o.report
    );
    // One header: the submitted order, not the active one.
    let headers = p.show("bc.Sales Header");
    assert_eq!(headers.len(), 1, "{headers:#?}");
    let header = &headers[0];
    assert_eq!(header["Document Type"], "Order");
    assert_eq!(header["External Document No."], "PO-4711 ALPHA BIKES");
    assert_eq!(header["Your Reference"], "ORD-01001");
    assert_eq!(header["Sell-to Customer No."], "C1");
    assert_eq!(header["Ship-to City"], "Seattle");

    // A second run changes nothing.
    let again = p.run_ok(&[]);
    assert_eq!(again.total().writes(), 0, "{:#}", again.report);
    assert_eq!(p.show("bc.Sales Header").len(), 1);
}

/// Engine gap: a Business Central record is referenced by its primary key only when the key has
/// one field (`runtime::engine::reference`), and "Sales Header"'s key is ("Document Type",
/// "No."), so `salesorderid via SALESORDER-FROMSALES` finds no coupled header; and the lines of
/// orders that are not taken (not Submitted) fail their parent lookup instead of being left
/// out. Both need engine support (see the issue 6 report).
#[test]
#[ignore = "engine: composite-key references and lines of filtered-out headers"]
fn the_lines_of_a_submitted_order_follow_their_header() {
    let p = orders_project(&with_sales_orders(), true);
    couple_customer_and_item(&p);
    let o = p.run(&[]);
    let order = o.mapping_order();
    let at = |m: &str| order.iter().position(|x| x == m).unwrap_or(usize::MAX);
    assert!(
        at("SALESORDER-FROMSALES") < at("SALESORDERLINE-FROMSALES"),
        "{order:?}"
    );
    assert_eq!(
        o.code,
        0,
        "{:#}\n{:#}",
        o.report,
        Value::from(o.actions.clone())
    );
    let headers = p.show("bc.Sales Header");
    assert_eq!(headers.len(), 1, "{headers:#?}");
    let lines = p.show("bc.Sales Line");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert_eq!(line["Document Type"], "Order");
    assert_eq!(line["Document No."], headers[0]["No."]);
    assert_eq!(line["Type"], "Item");
    assert_eq!(line["No."], "1000");
    assert_eq!(line["Quantity"], json!(3));
    assert_eq!(line["Unit Price"], json!(390));
    let again = p.run_ok(&[]);
    assert_eq!(again.total().writes(), 0, "{:#}", again.report);
}
