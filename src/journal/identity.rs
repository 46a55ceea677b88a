//! Which journal this is and how it is laid out: the data dir names its journal in `journal.id` (so a
//! journal that lost its contents is refused instead of started over empty), and the `meta` tree marks the
//! on-disk format (so a newer layout is refused instead of misread).

use std::path::Path;

use super::OpenFailure;
use crate::fsync;

/// The journal's layout: 2 = records with their changing part in `alert_state`; 3 = no claim trees (the
/// claims are rebuilt from the records; a version of format 2 would find none, so it must not open this).
/// A journal without the mark was written before (every record whole), which this version reads as it is.
pub(super) const FORMAT: u32 = 3;
pub(super) const FORMAT_KEY: &str = "journal_format";

/// Refuses a journal written by a newer layout (reading it would miss what that layout keeps elsewhere),
/// and marks an older or new one with this layout.
pub(super) fn check_format(meta: &sled::Tree) -> Result<(), OpenFailure> {
    let found = meta
        .get(FORMAT_KEY)?
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u32>().ok());
    match found {
        Some(found) if found > FORMAT => Err(OpenFailure::NewerFormat { found }),
        Some(f) if f == FORMAT => Ok(()),
        _ => {
            meta.insert(FORMAT_KEY, FORMAT.to_string().as_bytes())?;
            Ok(())
        }
    }
}

/// File beside the database naming the journal it belongs to.
pub(super) const IDENTITY_FILE: &str = "journal.id";
pub(super) const IDENTITY_KEY: &str = "journal_id";

/// Refuses to start over empty: the data dir remembers the id of its journal in `journal.id`, and the journal
/// keeps the same id inside. A journal that opens without its id while the file exists was lost or replaced
/// (corruption sled recovered from by truncating, a deleted database): starting anyway would forget every
/// alert and idempotency key, so that is an error for a human to look at.
pub(super) fn check_identity(dir: &Path, meta: &sled::Tree) -> Result<(), OpenFailure> {
    let file = dir.join(IDENTITY_FILE);
    // An empty file is one whose write a power loss cut short: as good as none.
    let on_disk = std::fs::read_to_string(&file)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let inside = meta
        .get(IDENTITY_KEY)?
        .map(|v| String::from_utf8_lossy(&v).to_string());
    match (inside, on_disk) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(inside), Some(on_disk)) => Err(OpenFailure::ForeignJournal {
            inside,
            file: file.display().to_string(),
            on_disk,
        }),
        (Some(a), None) => write_synced(&file, &a),
        (None, Some(id)) => Err(OpenFailure::LostContents {
            file: file.display().to_string(),
            id,
        }),
        (None, None) => {
            let id = ulid::Ulid::new().to_string();
            meta.insert(IDENTITY_KEY, id.as_bytes())?;
            meta.flush()?;
            write_synced(&file, &id)
        }
    }
}

/// Writes the identity file, durably (it replaces an empty one).
fn write_synced(file: &Path, id: &str) -> Result<(), OpenFailure> {
    fsync::write_atomically(file, format!("{id}\n").as_bytes(), fsync::Existing::Replace).map_err(
        |e| OpenFailure::WriteIdentity {
            file: file.display().to_string(),
            cause: e.to_string(),
        },
    )
}

/// The trees of claims that journals of format 2 and before kept (dropped on open): by key, and (in older
/// journals still) by age.
pub(super) const OLD_CLAIM_TREES: [&str; 2] = ["idem", "idem_by_time"];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::journal::test_support::reopen;
    use crate::journal::{Journal, JournalError};

    #[test]
    fn a_journal_of_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
            assert_eq!(j.meta_get(FORMAT_KEY).unwrap().as_deref(), Some("3"));
            j.meta_set(FORMAT_KEY, "4").unwrap();
            j.flush_now().unwrap();
        }
        let e = reopen(dir.path(), Duration::from_secs(60))
            .err()
            .expect("a newer format must not open");
        let JournalError::Open { cause, .. } = &e else {
            panic!("{e}");
        };
        assert!(
            matches!(cause, OpenFailure::NewerFormat { found: 4 }),
            "{e}"
        );
        assert_eq!(
            cause.to_string(),
            "the journal is in format 4, written by a newer alert-relay; this version reads format 3: run the newer version"
        );
    }

    /// A power loss can leave the identity file created but empty: the journal still has its id, so it
    /// opens and the file is written again (not refused as another data dir's journal).
    #[test]
    fn an_empty_identity_file_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        drop(Journal::open(dir.path(), Duration::from_secs(60)).unwrap());
        let file = dir.path().join(IDENTITY_FILE);
        let id = std::fs::read_to_string(&file).unwrap();
        assert_eq!(id.trim().len(), 26, "a ULID: {id:?}");
        std::fs::write(&file, "").unwrap();
        drop(reopen(dir.path(), Duration::from_secs(60)).unwrap());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), id);
    }

    #[test]
    fn a_journal_that_lost_its_contents_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Journal::open(dir.path(), Duration::from_secs(60)).unwrap());
        assert!(dir.path().join(IDENTITY_FILE).exists());
        // Opens again fine.
        drop(reopen(dir.path(), Duration::from_secs(60)).unwrap());
        // The database disappears (or sled recovers it to nothing): refuse, don't start over empty.
        std::fs::remove_dir_all(dir.path().join("journal")).unwrap();
        let e = Journal::open(dir.path(), Duration::from_secs(60))
            .err()
            .expect("must refuse");
        let named = std::fs::read_to_string(dir.path().join(IDENTITY_FILE)).unwrap();
        match &e {
            JournalError::Open {
                cause: OpenFailure::LostContents { id, .. },
                ..
            } => assert_eq!(id, named.trim()),
            other => panic!("{other}"),
        }
        assert!(
            e.to_string().contains("refusing to start over empty"),
            "{e}"
        );
    }

    /// A data dir whose `journal.id` names another journal than the database holds (a database copied or
    /// moved in from elsewhere) is refused, naming both ids.
    #[test]
    fn another_data_dirs_journal_is_refused() {
        let (here, there) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        drop(Journal::open(here.path(), Duration::from_secs(60)).unwrap());
        drop(Journal::open(there.path(), Duration::from_secs(60)).unwrap());
        let ids =
            [&here, &there].map(|d| std::fs::read_to_string(d.path().join(IDENTITY_FILE)).unwrap());
        std::fs::write(here.path().join(IDENTITY_FILE), &ids[1]).unwrap();
        let e = reopen(here.path(), Duration::from_secs(60))
            .err()
            .expect("must refuse");
        match &e {
            JournalError::Open {
                cause:
                    OpenFailure::ForeignJournal {
                        inside, on_disk, ..
                    },
                ..
            } => assert_eq!(
                (inside.as_str(), on_disk.as_str()),
                (ids[0].trim(), ids[1].trim())
            ),
            other => panic!("{other}"),
        }
        assert!(
            e.to_string().contains("this is another data dir's journal"),
            "{e}"
        );
    }
}
