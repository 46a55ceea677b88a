//! Loading: the templates listed, unknown names, a directory file overriding a built-in, and load
//! errors that name the file and field.

use std::path::Path;

use super::*;

#[test]
fn templates_are_send_sync_and_listed() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templates>();
    let t = built_in();
    assert_eq!(
        t.names(),
        [
            "crosstrade-kv",
            "signal-service",
            "tradingview-indicator",
            "tradingview-protect",
            "tradingview-strategy"
        ]
    );
    assert!(t.contains("signal-service"));
    assert!(!t.contains("nope"));
    assert!(t
        .description("tradingview-strategy")
        .unwrap()
        .contains("TradingView"));
}

#[test]
fn unknown_template_lists_the_known_ones() {
    let e = built_in().render("nope", &JsonMap::new(), "x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown template 'nope'; known templates: crosstrade-kv, signal-service, tradingview-indicator, tradingview-protect, tradingview-strategy"
    );
}

#[test]
fn a_directory_file_overrides_a_built_in() {
    let t = with_files(&[
        (
            "signal-service.toml",
            "description = \"mine\"\naccounts = [\"Live1\"]\n[request]\ninstrument = \"symbol\"\n\
             action = \"side | action\"\nquantity = \"qty\"\nstopLoss = \"sl\"\n",
        ),
        ("extra.toml", "[request]\naccount = \"'A'\"\ninstrument = \"'ES1!'\"\naction = \"'Buy'\"\nquantity = 1\nstopLoss = 1\n"),
        ("README.md", "not a template"),
    ])
    .unwrap();
    assert_eq!(
        t.names(),
        [
            "crosstrade-kv",
            "extra",
            "signal-service",
            "tradingview-indicator",
            "tradingview-protect",
            "tradingview-strategy"
        ]
    );
    assert_eq!(t.description("signal-service"), Some("mine"));
    let alert = obj(json!({"symbol":"ES1!","side":"sell","qty":1,"sl":4510}));
    let (key, reqs) = requests(t.render("signal-service", &alert, "s").unwrap());
    assert_eq!(key, None);
    assert_eq!(reqs[0].account, "Live1");
    assert_eq!(reqs[0].stop_loss, Some(4510.0));
}

#[test]
fn load_errors_name_the_file_and_field() {
    // Bad TOML.
    let e = with_files(&[("broken.toml", "when = \n")])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("template file ") && e.contains("broken.toml: "),
        "{e}"
    );

    // A syntax error in an expression names the field and the expression.
    let e = with_files(&[(
        "bad.toml",
        "[vars]\nentry = \"close |\"\n[request]\naccount = \"'A'\"\n",
    )])
    .unwrap_err();
    let TemplateError::Compile {
        template,
        field,
        expr,
        file,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(
        (template.as_str(), field.as_str(), expr.as_str()),
        ("bad", "vars.entry", "close |")
    );
    assert!(file.ends_with("bad.toml"));
    assert!(
        e.to_string()
            .contains("field 'vars.entry' (close |): syntax error"),
        "{e}"
    );

    // An expression cannot close the wrapper it is compiled in.
    let e = with_files(&[("esc.toml", "[request]\naccount = \"1 %}{% set x = 2\"\n")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field 'account' (1 %}{% set x = 2): syntax error"),
        "{e}"
    );

    // A bad key template.
    let e = with_files(&[("k.toml", "key = \"{{ id \"\n[request]\naccount = \"1\"\n")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("field 'key' ({{ id ): syntax error"), "{e}");

    // Structural mistakes.
    for (text, needle) in [
        (
            "[request]\ntakeprofit = \"1\"\n",
            "field 'takeprofit': unknown request field; expected one of when, command, account,",
        ),
        ("description = \"x\"\n", "field 'request': missing"),
        (
            "[request]\nquantity = 1\n[[requests]]\nquantity = 1\n",
            "use either [request] or [[requests]]",
        ),
        (
            "accounts = []\n[request]\nquantity = 1\n",
            "field 'accounts': a list of accounts must hold",
        ),
        (
            "accounts = 3\n[request]\nquantity = 1\n",
            "field 'accounts': must be a list",
        ),
        (
            "[vars]\naccount = \"1\"\n[request]\nquantity = 1\n",
            "field 'vars.account': a var name",
        ),
        (
            "[vars]\n__r0 = \"1\"\n[request]\nquantity = 1\n",
            "field 'vars.__r0': a var name",
        ),
        (
            "[vars]\nloop = \"1\"\n[request]\nquantity = 1\n",
            "field 'vars.loop': this name is a reserved word",
        ),
        (
            "[vars]\nnone = \"1\"\n[request]\nquantity = 1\n",
            "field 'vars.none': this name is a reserved word",
        ),
        (
            "[request]\nquantity = [1]\n",
            "field 'quantity': must be a string holding an expression",
        ),
        (
            "[request]\nquantity = \"  \"\n",
            "field 'quantity': empty expression",
        ),
        (
            "typo = 1\n[request]\nquantity = 1\n",
            "unknown field `typo`",
        ),
    ] {
        let e = with_files(&[("s.toml", text)]).unwrap_err().to_string();
        assert!(e.contains(needle), "{text:?}: {e}");
        assert!(e.contains("s.toml"), "{text:?}: {e}");
    }
}

#[test]
fn invalid_names_and_missing_dirs() {
    let e = with_files(&[("my template.toml", "[request]\nquantity = 1\n")]).unwrap_err();
    assert!(
        matches!(&e, TemplateError::InvalidName { name, .. } if name == "my template"),
        "{e}"
    );
    assert!(e
        .to_string()
        .starts_with("invalid template name 'my template' ("));

    let e = Templates::load(Some(Path::new("/nonexistent/templates")), instruments())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("template file /nonexistent/templates: "),
        "{e}"
    );
}
