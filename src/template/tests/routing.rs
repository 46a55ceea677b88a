//! Samples and routing: every built-in carries a sample that renders, and the accounts a template reaches
//! are known where they do not depend on the alert.

use super::*;

/// Every shipped template carries a `sample` that renders to requests: a new built-in without one fails
/// here (and `check` warns about one in a template directory).
#[test]
fn every_built_in_renders_its_sample() {
    let t = built_in();
    for name in t.names() {
        let sample = t
            .sample(&name)
            .unwrap_or_else(|| panic!("built-in '{name}' has no sample"));
        let body = crate::body::parse(sample.trim().as_bytes(), None)
            .unwrap_or_else(|e| panic!("sample of '{name}' does not parse: {e}"));
        match t.render(&name, &body.fields, "sample") {
            Ok(Rendered::Requests { requests, .. }) => assert!(!requests.is_empty(), "{name}"),
            other => panic!("sample of '{name}': {other:?}"),
        }
    }
}

#[test]
fn built_in_routing() {
    let t = built_in();
    let tv = t.routing("tradingview-strategy", "tv").unwrap();
    assert_eq!(tv.fixed, ["Sim101"]);
    assert!(tv.by_alert.is_empty());

    let sig = t.routing("signal-service", "tv").unwrap();
    assert!(sig.fixed.is_empty());
    assert_eq!(sig.by_alert.len(), 1);
    assert_eq!(sig.by_alert[0].field, "accounts");
    assert_eq!(
        sig.by_alert[0].default.as_deref(),
        Some(&["Sim101".to_string()][..])
    );
    assert_eq!(sig.known(), ["Sim101"]);

    let kv = t.routing("crosstrade-kv", "tv").unwrap();
    assert!(kv.fixed.is_empty());
    assert_eq!(kv.by_alert[0].field, "account");
    assert_eq!(kv.by_alert[0].default, None);
    assert!(kv.known().is_empty());
    assert!(t.routing("nope", "tv").is_none());
}

#[test]
fn constant_expressions_are_fixed_and_vars_are_by_alert() {
    let req = "[request]\ninstrument = \"'ES1!' | instrument\"\naction = \"'buy'\"\nquantity = 1\ntakeProfit = 6010\n";
    let t = with_files(&[
        ("const.toml", &format!("accounts = \"['A', 'B']\"\n{req}")),
        ("onestr.toml", &format!("accounts = \"'A,B'\"\n{req}")),
        (
            "byvar.toml",
            &format!("accounts = \"pick | default(['A'])\"\n[vars]\npick = \"alert.who\"\n{req}"),
        ),
        (
            "own.toml",
            "[[requests]]\naccount = \"'C'\"\ninstrument = \"'ES1!'\"\naction = \"'buy'\"\nquantity = 1\ntakeProfit = 6010\n\
             [[requests]]\naccount = \"alert.acct | default('D')\"\ninstrument = \"'ES1!'\"\naction = \"'buy'\"\nquantity = 1\ntakeProfit = 6010\n",
        ),
    ])
    .unwrap();
    assert_eq!(t.routing("const", "tv").unwrap().fixed, ["A", "B"]);
    assert_eq!(t.routing("onestr", "tv").unwrap().fixed, ["A", "B"]);
    let byvar = t.routing("byvar", "tv").unwrap();
    assert!(byvar.fixed.is_empty());
    assert_eq!(
        byvar.by_alert[0].default, None,
        "a var is always defined: no default"
    );
    let own = t.routing("own", "tv").unwrap();
    assert_eq!(own.fixed, ["C"]);
    assert_eq!(own.by_alert[0].field, "requests[1].account");
    assert_eq!(own.known(), ["C", "D"]);
}

#[test]
fn an_empty_sample_is_refused_at_load() {
    let err = with_files(&[("e.toml", "sample = \" \"\n[request]\nquantity = 1\n")]).unwrap_err();
    assert!(err.to_string().contains("field 'sample': empty"), "{err}");
}
