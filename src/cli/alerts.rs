//! `alerts list|show|resolve|export`: records from the journal or the running server, printed by [`super::output`].

use std::io::Write;

use anyhow::Context;
use serde_json::json;

use super::args::{AlertsCommand, ExportFormat};
use super::output::{write_jsonl, write_record, write_table};
use super::replay::export_header;
use super::store::open;
use crate::relay::record_reply;

/// Runs `alerts list|show|export`.
pub fn alerts(cmd: AlertsCommand) -> anyhow::Result<()> {
    let rt = super::command_runtime()?;
    rt.block_on(async move {
        match cmd {
            AlertsCommand::List { at, filters, json } => {
                let (_, store) = open(&at)?;
                let f = filters.to_list_filter()?;
                let recs = store.list(&f, Some(filters.limit.unwrap_or(100))).await?;
                let mut out = std::io::stdout().lock();
                if json {
                    let v = json!({
                        "alerts": recs.iter().map(record_reply).collect::<Vec<_>>(),
                        "count": recs.len(),
                    });
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                } else {
                    write_table(&mut out, &recs)?;
                }
                Ok(())
            }
            AlertsCommand::Show { id, at, json } => {
                let (_, store) = open(&at)?;
                let rec = store
                    .get(&id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no alert with id '{id}'"))?;
                let mut out = std::io::stdout().lock();
                if json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(&record_reply(&rec))?
                    )?;
                } else {
                    write_record(&mut out, &rec)?;
                }
                Ok(())
            }
            AlertsCommand::Resolve { id, how, note, at } => {
                let (_, store) = open(&at)?;
                let rec = store.resolve(&id, how, &note).await?;
                write_record(&mut std::io::stdout().lock(), &rec)?;
                Ok(())
            }
            AlertsCommand::Export {
                at,
                filters,
                format: ExportFormat::Jsonl,
                output,
            } => {
                let (_, store) = open(&at)?;
                let f = filters.to_list_filter()?;
                let mut recs = store.list(&f, filters.limit).await?;
                recs.reverse(); // oldest first
                let n = recs.len();
                match &output {
                    Some(path) => {
                        let file = std::fs::File::create(path)
                            .with_context(|| format!("cannot create {}", path.display()))?;
                        let mut w = std::io::BufWriter::new(file);
                        writeln!(w, "{}", export_header())?;
                        write_jsonl(&mut w, &recs)?;
                        w.flush()?;
                        eprintln!("exported {n} record(s) to {}", path.display());
                    }
                    None => {
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "{}", export_header())?;
                        write_jsonl(&mut out, &recs)?
                    }
                }
                Ok(())
            }
        }
    })
}
