//! Fake upstreams' side of HTTP: reading one request off a socket and answering it, a scripted upstream
//! built on the two, and the CrossTrade whose CancelAndBracket never answers (an `unknown` outcome).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one HTTP/1.1 request (head, then a `content-length` body): `(head, body)`, or `None` when the
/// peer closes first.
pub async fn read_request(sock: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buf.len() < pos + 4 + len {
                let n = sock.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = String::from_utf8_lossy(&buf[pos + 4..pos + 4 + len]).to_string();
            return Some((head, body));
        }
    }
}

/// What a scripted upstream does with one request it has read.
#[derive(Clone)]
pub enum Reply {
    /// Answer with this status and JSON body, plus these response headers.
    Respond(u16, String, &'static [(&'static str, &'static str)]),
    /// Never answer: longer than any timeout of the relay (the fault under test).
    Hang,
    /// Close the connection without answering.
    Drop,
}

impl Reply {
    /// This status and JSON body, no further headers.
    pub fn json(code: u16, body: impl Into<String>) -> Reply {
        Reply::Respond(code, body.into(), &[])
    }
}

/// Writes a `code` answer with the JSON `body` and `headers`, then closes the connection.
pub async fn respond(sock: &mut TcpStream, code: u16, body: &str, headers: &[(&str, &str)]) {
    let mut extra = String::new();
    for (k, v) in headers {
        extra.push_str(&format!("{k}: {v}\r\n"));
    }
    let resp = format!(
        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// A scripted HTTP upstream on `127.0.0.1:0`: connection `n` (counted from 0 as they are accepted) has its
/// request read and handed to `script(n, head, body)`, which says what to do with it. Returns its URL.
pub async fn scripted<F>(script: F) -> String
where
    F: Fn(usize, &str, &str) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let script = Arc::new(script);
    tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok((mut sock, _)) = listener.accept().await {
            let (script, i) = (script.clone(), n);
            n += 1;
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut sock).await else {
                    return;
                };
                match script(i, &head, &body) {
                    Reply::Respond(code, body, headers) => {
                        respond(&mut sock, code, &body, headers).await
                    }
                    Reply::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
                    Reply::Drop => drop(sock),
                }
            });
        }
    });
    url
}

/// How [`unanswering_crosstrade`] answers `GET .../orders`.
#[derive(Clone, Copy)]
pub enum Listing {
    /// The orders it was sent, under their OCO ids.
    Truthful,
    /// One order of someone else: none with an OCO id sent.
    Others,
    /// 500, always.
    Broken,
}

/// A CrossTrade upstream whose CancelAndBracket never answers (the relay times out: outcome unknown) and
/// whose order listing answers as `listing` says. Returns its URL and the OCO ids it was sent.
pub async fn unanswering_crosstrade(listing: Listing) -> (String, Arc<Mutex<Vec<String>>>) {
    let ocos = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = ocos.clone();
    let url = scripted(move |_, head, body| {
        if head.starts_with("POST ") {
            if let Ok(v) = serde_json::from_str::<Value>(body) {
                if let Some(oco) = v["ocoId"].as_str() {
                    seen.lock().unwrap().push(oco.to_string());
                }
            }
            return Reply::Hang;
        }
        match listing {
            Listing::Truthful => {
                let orders: Vec<Value> = seen
                    .lock()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, oco)| json!({"orderId": format!("ord-{i}"), "oco": oco, "orderState": "Working"}))
                    .collect();
                Reply::json(200, json!({"orders": orders, "success": true}).to_string())
            }
            Listing::Others => Reply::json(
                200,
                json!({"orders": [{"orderId": "x", "oco": "someone-else", "orderState": "Filled"}], "success": true}).to_string(),
            ),
            Listing::Broken => Reply::json(500, json!({"error": "boom"}).to_string()),
        }
    })
    .await;
    (url, ocos)
}
