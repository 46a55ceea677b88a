//! The journal, opened here or reached through the server that holds it ([`Store`]).
//!
//! sled lets one process open a database, so every command first tries to open the data dir's journal
//! itself ([`Store::Local`]). When a running server holds it, the command talks to that server instead
//! ([`Store::Remote`]): a running server announces itself in `<data_dir>/server.json` (`{"url": ..., "pid":
//! ...}`, see [`crate::server`]) and removes it on a clean exit. A stale file (server killed) is harmless: the
//! journal then opens.

use std::sync::Arc;

use anyhow::bail;

use super::args::Location;
use super::client::Remote;
use crate::clock::now_ms;
use crate::config::{load_config, Config};
use crate::journal::{Journal, ListFilter};
use crate::record::{AlertRecord, Status};
use crate::server::{announced, SERVER_FILE};
use crate::settle::{resolve_by_operator, Resolution};

/// The journal, opened here or reached through the server that holds it.
pub enum Store {
    Local(Arc<Journal>),
    Remote(Remote),
}

impl Store {
    /// Opens the journal of `cfg`'s data dir, or connects to the server that holds it. Without `create`, a
    /// data dir that has no journal yet is an error (a mistyped --data-dir should not make an empty one).
    pub fn open(cfg: &Config, token: Option<&str>, create: bool) -> anyhow::Result<Store> {
        let dir = cfg.data_dir();
        if !create && !dir.join("journal").exists() && announced(&dir).is_none() {
            bail!(
                "no journal in {}: check --data-dir / --config (server.data_dir)",
                dir.display()
            );
        }
        match Journal::open_configured(&dir, &cfg.journal) {
            Ok(j) => Ok(Store::Local(Arc::new(j))),
            Err(open_err) => match announced(&dir) {
                Some(info) => Ok(Store::Remote(Remote::new(cfg, info, token)?)),
                None => Err(anyhow::Error::new(open_err).context(format!(
                    "no running server announced in {} either",
                    dir.join(SERVER_FILE).display()
                ))),
            },
        }
    }

    /// Records newest first; `limit` None: every matching record.
    pub async fn list(
        &self,
        f: &ListFilter,
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<AlertRecord>> {
        match self {
            Store::Local(j) => {
                let mut f = f.clone();
                f.limit = limit.unwrap_or(usize::MAX);
                Ok(j.list(&f)?)
            }
            Store::Remote(r) => r.list(f, limit).await,
        }
    }

    /// Settles alert `id`'s `unknown` executions as an operator: through the server when one holds the
    /// journal (its unknown list and `/healthz` follow), else in the journal itself.
    pub async fn resolve(
        &self,
        id: &str,
        how: Resolution,
        note: &str,
    ) -> anyhow::Result<AlertRecord> {
        match self {
            Store::Local(j) => {
                let mut rec = j
                    .get(id)?
                    .ok_or_else(|| anyhow::anyhow!("no alert with id '{id}'"))?;
                if !rec.executions.iter().any(|e| e.status == Status::Unknown) {
                    bail!(
                        "alert {} is {}, not unknown: only an execution whose outcome is unknown can be resolved",
                        rec.id,
                        rec.status.as_str()
                    );
                }
                let at = now_ms();
                let st = j
                    .update(id, |st| {
                        resolve_by_operator(&mut st.executions, how, note, at);
                    })?
                    .ok_or_else(|| anyhow::anyhow!("no alert with id '{id}'"))?;
                j.flush_now()?;
                rec.set_state(st);
                Ok(rec)
            }
            Store::Remote(r) => r.resolve(id, how, note).await,
        }
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<Option<AlertRecord>> {
        match self {
            Store::Local(j) => Ok(j.get(id)?),
            Store::Remote(r) => r.get(id).await,
        }
    }
}

pub(super) fn open(at: &Location) -> anyhow::Result<(Config, Store)> {
    let cfg = load_config(at.config.as_deref(), None, at.data_dir.clone())?;
    let store = Store::open(&cfg, at.token.as_deref(), false)?;
    Ok((cfg, store))
}
