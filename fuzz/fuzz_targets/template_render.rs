//! Template rendering of arbitrary alerts through every shipped template: errors are fine, panics are not,
//! and whatever renders is a valid CancelAndBracket request.
#![no_main]
use std::sync::{Arc, OnceLock};

use alert_relay::config::Config;
use alert_relay::instruments::Instruments;
use alert_relay::template::{Rendered, Templates};
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static (Templates, Arc<Instruments>) {
    static T: OnceLock<(Templates, Arc<Instruments>)> = OnceLock::new();
    T.get_or_init(|| {
        let cfg = Config::load(None).unwrap();
        let inst = Arc::new(cfg.instruments().unwrap());
        (Templates::load(None, inst.clone()).unwrap(), inst)
    })
}

fuzz_target!(|data: &[u8]| {
    let (templates, instruments) = setup();
    let Ok(body) = alert_relay::body::parse(data, None) else { return };
    for name in templates.names() {
        if let Ok(Rendered::Requests { requests, .. }) = templates.render(&name, &body.fields, "fuzz") {
            for r in requests {
                assert!(r.quantity > 0);
                assert!(r.validate(instruments).is_ok(), "{r:?}");
            }
        }
    }
});
