//! Alert body parsing (JSON / key=value / text) and CancelAndBracket argument validation on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for ct in [None, Some("application/json"), Some("text/plain")] {
        if let Ok(mut body) = alert_relay::body::parse(data, ct) {
            let _ = body.take_secret("secret");
            let _ = body.to_stored();
        }
    }
});
