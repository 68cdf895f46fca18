//! `coupler fmt` keeps meaning and comments and is idempotent on every mapping file of the
//! repository; hand-written ugly inputs pin the canonical layout exactly.

use crate::support::common;

use coupler::source::FileId;
use coupler::syntax::{self, ast, fingerprint, format_checked, guard};
use std::path::{Path, PathBuf};

fn parse(text: &str) -> ast::File {
    let (ast, diags) = syntax::parse_file(FileId(0), text);
    ast.unwrap_or_else(|| panic!("does not parse: {diags:#?}\n{text}"))
}

/// What `coupler fmt` writes for `text`.
fn format(text: &str) -> String {
    format_checked(FileId(0), &parse(text), text)
        .unwrap_or_else(|e| panic!("format_checked: {e}\n{text}"))
}

fn comments(file: &ast::File) -> Vec<String> {
    let mut all: Vec<String> = file
        .comments
        .iter()
        .map(|c| c.text.trim_end().to_string())
        .collect();
    all.sort();
    all
}

/// Every round-trip property of one file's text; the problems found, if any.
fn round_trip_problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let (Some(original), _) = syntax::parse_file(FileId(0), text) else {
        return problems;
    };
    let once = match format_checked(FileId(0), &original, text) {
        Ok(once) => once,
        Err(e) => return vec![format!("format_checked: {e}")],
    };
    let (reparsed, diags) = syntax::parse_file(FileId(0), &once);
    let Some(reparsed) = reparsed else {
        return vec![format!("the formatted text does not parse: {diags:?}")];
    };
    if fingerprint(&reparsed) != fingerprint(&original) {
        problems.push("fingerprint(parse(format(x))) != fingerprint(parse(x))".into());
    }
    match format_checked(FileId(0), &reparsed, &once) {
        Ok(twice) if twice == once => {}
        Ok(_) => problems.push("format(format(x)) != format(x)".into()),
        Err(e) => problems.push(format!("format_checked of the formatted text: {e}")),
    }
    if reparsed.comments.len() != original.comments.len() {
        problems.push(format!(
            "{} comments became {}",
            original.comments.len(),
            reparsed.comments.len()
        ));
    } else if comments(&reparsed) != comments(&original) {
        problems.push("comment text changed".into());
    }
    if !once.ends_with('\n') || once.ends_with("\n\n") {
        problems.push("the output does not end with exactly one line break".into());
    }
    problems
}

#[test]
fn every_mapping_file_round_trips() {
    let root = common::repo();
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["mappings", "examples", "tests/fixtures", "tests/data"] {
        files.extend(common::map_files(&root.join(dir)));
    }
    let mut parsed = 0;
    let mut failures = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        // Fixtures of binary and non-UTF-8 input are not text to format.
        let Ok(text) = guard::decode(FileId(0), bytes) else {
            continue;
        };
        if syntax::parse_file(FileId(0), &text).0.is_none() {
            continue;
        }
        parsed += 1;
        for p in round_trip_problems(&text) {
            failures.push(format!("{}: {p}", rel(path)));
        }
    }
    eprintln!("round-tripped {parsed} of {} mapping files", files.len());
    assert!(files.contains(&common::standard_path()), "{files:?}");
    assert!(parsed >= 2, "only {parsed} files parsed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn rel(path: &Path) -> String {
    path.strip_prefix(common::repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Asserts `coupler fmt` turns `ugly` into exactly `expected`, and leaves `expected` alone.
#[track_caller]
fn assert_formats(ugly: &str, expected: &str) {
    let got = format(ugly);
    if got != expected {
        panic!(
            "formatted text differs\n--- expected\n{expected}\n--- got\n{got}\n--- diff\n{}",
            similar::TextDiff::from_lines(expected, &got).unified_diff()
        );
    }
    assert_eq!(
        format(expected),
        expected,
        "the canonical text is not a fixed point"
    );
    assert!(round_trip_problems(ugly).is_empty());
    assert_eq!(fingerprint(&parse(ugly)), fingerprint(&parse(expected)));
}

/// Every clause, in reverse canonical order, with comments everywhere and odd spacing.
#[test]
fn clauses_comments_and_spacing() {
    let ugly = r#"# file header comment
system   bc = business_central   "../schemas/business-central.yaml"   # the ERP
system sales=dataverse "../schemas/dynamics-365-sales.yaml"
settings{sales_orders=true  # orders on
legacy_pricing = false}
# about customers



mapping CUSTOMER : bc.Customer<->sales.account{
fields{
# leading in fields
"No."   ->   accountnumber   # trailing after field
"Name"<->name|truncate( 100 )
      'systemuser'->owneridtype
"Salesperson Code" -> ownerid via SALESPEOPLE [ clear  on   fail ]
# before closing brace of fields
}
    on delete:uncouple
  schedule every 30m idle 12h
on conflict : bc wins
    on missing:create  # trailing after a clause
after SALESPEOPLE,CURRENCY
  couple by "No." == accountnumber and Name==name ignoring   case
where sales:statecode=='Active' and ( customertypecode in ('Customer','Partner') or not creditonhold==true )
    watermark bc : SystemModifiedAt
key sales:accountid
when sales_orders
on create sales{customertypecode='Customer'
  description = 'it''s new'}
# before closing brace of mapping
}
options "PAYMENT TERMS":bc."Payment Terms".Code->sales.account.paymenttermscode{'COD'='Net 30','2%8D'='2% 10, Net 30'}
# end of file
"#;
    let expected = r#"# file header comment
system bc    = business_central "../schemas/business-central.yaml"  # the ERP
system sales = dataverse        "../schemas/dynamics-365-sales.yaml"

settings {
    sales_orders   = true  # orders on
    legacy_pricing = false
}

# about customers
mapping CUSTOMER: bc.Customer <-> sales.account {
    when sales_orders
    key sales: accountid
    watermark bc: SystemModifiedAt
    where sales: statecode == 'Active' and (customertypecode in ('Customer', 'Partner') or not creditonhold == true)
    couple by "No." == accountnumber and Name == name ignoring case
    after SALESPEOPLE, CURRENCY
    on missing: create  # trailing after a clause
    on conflict: bc wins
    on delete: uncouple
    schedule every 30m idle 12h

    on create sales {
        customertypecode = 'Customer'
        description      = 'it''s new'
    }

    fields {
        # leading in fields
        "No."               -> accountnumber  # trailing after field
        Name               <-> name | truncate(100)
        'systemuser'        -> owneridtype
        "Salesperson Code"  -> ownerid via SALESPEOPLE [clear on fail]
        # before closing brace of fields
    }
    # before closing brace of mapping
}

options "PAYMENT TERMS": bc."Payment Terms".Code -> sales.account.paymenttermscode {
    'COD'  = 'Net 30',
    '2%8D' = '2% 10, Net 30',
}

# end of file
"#;
    assert_formats(ugly, expected);
}

/// Items run together, one-line blocks, quoting, filters, transforms, a comment between system
/// lines and a last comment without a line break.
#[test]
fn items_blocks_and_quoting() {
    let ugly = r#"system bc = business_central "a.yaml"
# the other side
system   sales   = dataverse "b.yaml"
mapping CURRENCY: bc.Currency -> sales.transactioncurrency {
    where bc: not not ("ISO Code" != '' and Code not in (  'X' , 'Y' ))
  schedule every 30m
    fields { Code -> isocurrencycode | truncate(5)
Symbol->currencysymbol
     "Description"  ->  currencyname  }
}
mapping   "UNIT GROUP"  :  bc."Unit Group"->sales.uomschedule{ }
mapping SALESPEOPLE: bc."Salesperson/Purchaser" <- sales.systemuser { fields {
  "E-Mail" <- internalemailaddress
  Name <- fullname | truncate(50) | default('?')
 Code <- employeeid | map { 'a' => 'b' , 'c'=>null, }
 Pager <- "not"   # a reserved word stays quoted
} }
options   SHIPPING: bc."Shipping Agent".Code -> sales.account.address1_shippingmethodcode
# trailing comment without newline"#;
    let expected = r#"system bc    = business_central "a.yaml"
# the other side
system sales = dataverse        "b.yaml"

mapping CURRENCY: bc.Currency -> sales.transactioncurrency {
    where bc: not not ("ISO Code" != '' and Code not in ('X', 'Y'))
    schedule every 30m

    fields {
        Code        -> isocurrencycode | truncate(5)
        Symbol      -> currencysymbol
        Description -> currencyname
    }
}

mapping "UNIT GROUP": bc."Unit Group" -> sales.uomschedule {
}

mapping SALESPEOPLE: bc."Salesperson/Purchaser" <- sales.systemuser {
    fields {
        "E-Mail" <- internalemailaddress
        Name     <- fullname | truncate(50) | default('?')
        Code     <- employeeid | map { 'a' => 'b', 'c' => null }
        Pager    <- "not"  # a reserved word stays quoted
    }
}

options SHIPPING: bc."Shipping Agent".Code -> sales.account.address1_shippingmethodcode

# trailing comment without newline
"#;
    assert_formats(ugly, expected);
}

/// Arrow column: left operands padded so arrows right-align; the column is as wide as the widest
/// arrow of the block, so a block without `<->` has no extra space. Blank lines between field
/// lines are kept (one at most); comment lines between them stay where they are.
#[test]
fn arrows_align_per_block() {
    let ugly = "mapping A: bc.X <-> sales.y {
fields {
a -> b
\"Long Name\" <-> c


# about d
d <- e   # why
f->g|trim
}
on conflict: log
}

mapping B: bc.X -> sales.y {
    fields {
        a ->   b
            \"Longer Name\" -> c
    }
}
";
    let expected = "mapping A: bc.X <-> sales.y {
    on conflict: log

    fields {
        a            -> b
        \"Long Name\" <-> c

        # about d
        d            <- e  # why
        f            -> g | trim
    }
}

mapping B: bc.X -> sales.y {
    fields {
        a             -> b
        \"Longer Name\" -> c
    }
}
";
    assert_formats(ugly, expected);
}

/// Windows line breaks are read, and written as `\n`; comments lose the `\r`.
#[test]
fn crlf_input() {
    let ugly = "system bc = business_central \"a.yaml\"  # erp\r\nmapping A: bc.X -> sales.y {\r\n    fields {\r\n        a -> b  # t\r\n    }\r\n}\r\n";
    let expected = "system bc = business_central \"a.yaml\"  # erp\n\nmapping A: bc.X -> sales.y {\n    fields {\n        a -> b  # t\n    }\n}\n";
    assert_formats(ugly, expected);
}

/// Formatting the standard file changes nothing: it is committed in canonical form.
#[test]
fn standard_file_is_canonical() {
    let text = common::standard_text();
    let formatted = format(&text);
    if formatted != text {
        panic!(
            "`coupler fmt` would change {}:\n{}",
            rel(&common::standard_path()),
            similar::TextDiff::from_lines(&text, &formatted).unified_diff()
        );
    }
}

/// Conditional blocks after the lines they override, the split last, comments kept inside both,
/// `couple via` with the match clauses.
#[test]
fn conditional_blocks_splits_and_borrowed_couplings() {
    let ugly = r#"mapping L: bc."Sales Line" <- sales.salesorderdetail {
  # before split
  split productdescription every 100 into Description numbered "Line No." {
     # inside split
     Type <- ' '   # trailing line
     "Document Type" <- 'Order'
  }
  fields when sales: isproductoverridden == true {
     "No." <- 'WRITE-IN'
  }
  fields { "Line No." <- sequencenumber | multiply(10000)
  "Document No." <- salesorderid via H [parent] }
  couple via X  # trailing couple
  watermark sales: none
}
"#;
    let expected = r#"mapping L: bc."Sales Line" <- sales.salesorderdetail {
    watermark sales: none
    couple via X  # trailing couple

    fields {
        "Line No."     <- sequencenumber | multiply(10000)
        "Document No." <- salesorderid via H [parent]
    }

    fields when sales: isproductoverridden == true {
        "No." <- 'WRITE-IN'
    }

    # before split
    split productdescription every 100 into Description numbered "Line No." {
        # inside split
        Type            <- ' '  # trailing line
        "Document Type" <- 'Order'
    }
}
"#;
    assert_formats(ugly, expected);
}

/// `create missing`, `also` and `schedule every` of an option mapping: one a line under the head,
/// in this order, before the pairs' brace; the layout round-trips.
#[test]
fn option_mapping_clauses() {
    assert_formats(
        "options \"PAYMENT TERMS\": bc.\"Payment Terms\".Code -> sales.account.paymenttermscode schedule every 1440m also sales.salesorder.paymenttermscode,sales.invoice.paymenttermscode create missing\n\
         options TERMS: bc.\"Payment Terms\".Code -> sales.account.paymenttermscode create missing { 'COD' = 'Net 30' }\n",
        "options \"PAYMENT TERMS\": bc.\"Payment Terms\".Code -> sales.account.paymenttermscode\n    \
         create missing\n    \
         also sales.salesorder.paymenttermscode, sales.invoice.paymenttermscode\n    \
         schedule every 1440m\n\
         \n\
         options TERMS: bc.\"Payment Terms\".Code -> sales.account.paymenttermscode\n    \
         create missing {\n    \
         'COD' = 'Net 30',\n\
         }\n",
    );
}
