//! The operator's dashboard: `GET /` and its assets under `/assets/`, embedded in the binary (no build
//! step, nothing fetched from elsewhere). The page is a client of the Bearer-authenticated JSON API; serving
//! it needs no token, reading anything through it does.
//!
//! Every answer carries a strict Content-Security-Policy: scripts and styles from this origin only (no
//! inline script, no `eval`), requests to this origin only, no framing. The page renders alert bodies, which
//! senders control, as text only.

use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply as _};

const INDEX_HTML: &str = include_str!("../../assets/dashboard/index.html");
const APP_JS: &str = include_str!("../../assets/dashboard/app.js");
const APP_CSS: &str = include_str!("../../assets/dashboard/app.css");

/// The policy of every dashboard answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let index = warp::path::end()
        .and(warp::get())
        .map(|| asset(INDEX_HTML, "text/html; charset=utf-8"));
    let js = warp::path!("assets" / "app.js")
        .and(warp::get())
        .map(|| asset(APP_JS, "text/javascript; charset=utf-8"));
    let css = warp::path!("assets" / "app.css")
        .and(warp::get())
        .map(|| asset(APP_CSS, "text/css; charset=utf-8"));
    index.or(js).unify().or(css).unify()
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, content_type.parse().expect("static header"));
    // The assets change with the binary only; `no-cache` revalidates so an upgrade shows at once.
    h.insert(CACHE_CONTROL, "no-cache".parse().expect("static header"));
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ] {
        h.insert(name, value.parse().expect("static header"));
    }
    r
}
