//! A headless Chromium driven over the DevTools protocol (CDP), for the dashboard test: open a page, run
//! JavaScript in it, type, accept its dialogs, and record every request URL it makes and every error it
//! raises (exceptions, console errors, Content-Security-Policy violations). Chromium speaks CDP itself and
//! the relay already depends on tokio-tungstenite, so no WebDriver server and no new crate are needed.
//!
//! [`Browser::launch`] says why when there is no Chromium: the test then fails under
//! `ALERT_RELAY_REQUIRE_BROWSER=1` (CI) and is skipped, loudly, otherwise.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::wait::eventually;

/// How long one CDP call (or Chromium's start) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the page may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(20);

/// What the page did, as seen from the browser.
#[derive(Debug, Default)]
pub struct PageLog {
    /// Every request the page made (documents, scripts, fetches), by URL, in order.
    pub request_urls: Vec<String>,
    /// The messages of the dialogs (`confirm`) it opened; each was accepted.
    pub dialogs: Vec<String>,
    /// Uncaught exceptions, `console.error`, and the browser's own error log (CSP violations) — not the
    /// network's (an HTTP 401 the page expects is not a page error).
    pub errors: Vec<String>,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
    pub log: Arc<Mutex<PageLog>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The Chromium to drive: `ALERT_RELAY_CHROMIUM`, else the first of the usual names on `PATH`.
pub fn chromium_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ALERT_RELAY_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

impl Browser {
    /// Starts a headless Chromium on an empty profile and attaches to its page. `Err` when there is no
    /// Chromium to start (the message says so); anything else going wrong panics.
    pub async fn launch() -> Result<Browser, String> {
        let exe = chromium_path().ok_or("no chromium on PATH (nor ALERT_RELAY_CHROMIUM)")?;
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(&exe)
            .args([
                "--headless=new",
                // Root in a container has no user namespace for the sandbox; the page is our own.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        // Chromium writes the port it chose into the profile once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + CALL_TIMEOUT;
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u16>().ok()))
            {
                break port;
            }
            assert!(Instant::now() < deadline, "{} did not start", exe.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .expect("DevTools target list")
            .json()
            .await
            .expect("DevTools target list is JSON");
        let ws_url = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap_or_else(|| panic!("no page target in {targets}"))
            .to_string();
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("DevTools WebSocket");
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let pending: Pending = Arc::default();
        let log: Arc<Mutex<PageLog>> = Arc::default();
        let next_id = Arc::new(AtomicU64::new(1));
        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let reader = {
            let (pending, log, out, next_id) =
                (pending.clone(), log.clone(), out.clone(), next_id.clone());
            tokio::spawn(async move {
                while let Some(Ok(msg)) = stream.next().await {
                    let Message::Text(text) = msg else { continue };
                    let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    if let Some(id) = v["id"].as_u64() {
                        if let Some(tx) = pending.lock().unwrap().remove(&id) {
                            let _ = tx.send(v);
                        }
                        continue;
                    }
                    let p = &v["params"];
                    let mut log = log.lock().unwrap();
                    match v["method"].as_str().unwrap_or("") {
                        "Network.requestWillBeSent" => {
                            log.request_urls
                                .push(p["request"]["url"].as_str().unwrap_or("").to_string());
                        }
                        "Page.javascriptDialogOpening" => {
                            log.dialogs
                                .push(p["message"].as_str().unwrap_or("").to_string());
                            let id = next_id.fetch_add(1, Ordering::SeqCst);
                            let accept = json!({"id": id, "method": "Page.handleJavaScriptDialog",
                                "params": {"accept": true}});
                            let _ = out.send(Message::text(accept.to_string()));
                        }
                        "Runtime.exceptionThrown" => log.errors.push(format!(
                            "exception: {}",
                            p["exceptionDetails"]["exception"]["description"]
                                .as_str()
                                .or(p["exceptionDetails"]["text"].as_str())
                                .unwrap_or("?")
                        )),
                        "Runtime.consoleAPICalled" if p["type"] == "error" => {
                            log.errors.push(format!("console.error: {}", p["args"]))
                        }
                        "Log.entryAdded"
                            if p["entry"]["level"] == "error"
                                && p["entry"]["source"] != "network" =>
                        {
                            log.errors.push(format!(
                                "{}: {}",
                                p["entry"]["source"].as_str().unwrap_or("log"),
                                p["entry"]["text"].as_str().unwrap_or("")
                            ))
                        }
                        _ => {}
                    }
                }
            })
        };
        let b = Browser {
            child,
            _profile: profile,
            out,
            pending,
            next_id,
            log,
            tasks: vec![writer, reader],
        };
        for domain in ["Page", "Runtime", "Network", "Log"] {
            b.call(&format!("{domain}.enable"), json!({})).await;
        }
        Ok(b)
    }

    /// One CDP command; panics on an error answer or no answer.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let msg = json!({"id": id, "method": method, "params": params});
        self.out
            .send(Message::text(msg.to_string()))
            .expect("DevTools connection open");
        let v = tokio::time::timeout(CALL_TIMEOUT, rx)
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer within {CALL_TIMEOUT:?}"))
            .expect("DevTools connection open");
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// Opens `url` and waits until the document and its scripts have loaded.
    pub async fn open(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_js(
            &format!("{url} loaded"),
            "document.readyState === 'complete' && location.href.startsWith('http')",
        )
        .await;
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value; panics if it throws.
    pub async fn js(&self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr} threw: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until `expr` is truthy in the page (the page polls every 2 s; [`WAIT`] leaves room for a loaded
    /// machine); `what` names the condition on failure.
    pub async fn wait_js(&self, what: &str, expr: &str) -> Value {
        let truthy =
            format!("(() => {{ try {{ return !!({expr}); }} catch (e) {{ return false; }} }})()");
        eventually(
            format!("the page to show {what} ({expr})"),
            WAIT,
            || self.js(&truthy),
            |v| v == &Value::Bool(true),
        )
        .await;
        self.js(expr).await
    }

    /// Clicks the element matching the CSS `selector` (panics if there is none).
    pub async fn click(&self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let clicked = self
            .js(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return false; e.click(); return true; }})()"
            ))
            .await;
        assert_eq!(clicked, Value::Bool(true), "nothing to click at {selector}");
    }

    /// Focuses the element with `id`, empties it, and types `text` into it as keyboard input.
    pub async fn type_into(&self, id: &str, text: &str) {
        let id = serde_json::to_string(id).unwrap();
        self.js(&format!(
            "(() => {{ const e = document.getElementById({id}); e.value = ''; e.focus(); }})()"
        ))
        .await;
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// Sets the value of the `<select>` or `<input>` with `id` and fires `change`, as a person choosing.
    pub async fn choose(&self, id: &str, value: &str) {
        let (id, value) = (
            serde_json::to_string(id).unwrap(),
            serde_json::to_string(value).unwrap(),
        );
        self.js(&format!(
            "(() => {{ const e = document.getElementById({id}); e.value = {value}; \
             e.dispatchEvent(new Event('change')); }})()"
        ))
        .await;
    }

    /// The page as a person and as a parser see it: its text, and its HTML (with the current values of its
    /// form fields).
    pub async fn page_text_and_html(&self) -> (String, String) {
        let v = self
            .js(
                "(() => { const fields = [...document.querySelectorAll('input, select, textarea')]\
                   .map(e => e.id + '=' + e.value).join('\\n');\
                   return [document.body.innerText, document.documentElement.outerHTML + '\\n' + fields]; })()",
            )
            .await;
        (
            v[0].as_str().unwrap_or("").to_string(),
            v[1].as_str().unwrap_or("").to_string(),
        )
    }

    /// Emulates a screen `width` CSS pixels wide (a phone: 390).
    pub async fn set_width(&self, width: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 844, "deviceScaleFactor": 1, "mobile": width < 600}),
        )
        .await;
    }

    /// Fails if the page raised any error so far.
    pub fn assert_no_page_errors(&self) {
        let log = self.log.lock().unwrap();
        assert!(
            log.errors.is_empty(),
            "the page raised errors: {:#?}",
            log.errors
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
