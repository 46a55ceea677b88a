//! Making new files survive a power loss: a file's contents are synced through the file, its name through
//! the directory that holds it; small files are written whole or not at all (temporary file, rename). For the small files the relay writes once (secrets, the journal's id) and the
//! directories it creates (the data dir and its `secrets/`).

use std::path::Path;

/// Makes a directory's entries durable, so files just created in it are found after a power loss. Not
/// possible (and not needed the same way) on Windows, where this does nothing.
/// An empty path (the parent of a bare file name) is the current directory.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `dir` and whatever parents are missing, like `std::fs::create_dir_all`, and makes each new
/// directory's entry durable (syncs the directory holding it): a data dir created on first start would
/// otherwise be lost with everything in it on a power loss, however well its files were synced.
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut created = Vec::new();
    let mut d = dir;
    while !d.as_os_str().is_empty() && !d.exists() {
        created.push(d);
        match d.parent() {
            Some(parent) => d = parent,
            None => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    for new in created {
        if let Some(parent) = new.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// What [`write_atomically`] does when the file already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Leave it and fail with `AlreadyExists` (a generated secret never overwrites one senders hold).
    Keep,
    /// Replace it in one step.
    Replace,
}

/// Writes `contents` to `path` so that the file is either absent or complete, even after a crash or a
/// power loss mid-write: written to a temporary file beside it (owner-only, mode 0600 on Unix), synced,
/// moved into place (`Existing::Keep`: linked, failing if the name exists), and the directory synced.
pub fn write_atomically(path: &Path, contents: &[u8], existing: Existing) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    match existing {
        Existing::Keep => tmp.persist_noclobber(path).map_err(|e| e.error)?,
        Existing::Replace => tmp.persist(path).map_err(|e| e.error)?,
    };
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_syncs_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        sync_dir(dir.path()).unwrap();
        sync_dir(Path::new("file-name").parent().unwrap()).unwrap();
        #[cfg(unix)]
        assert!(sync_dir(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn missing_directories_are_created_and_existing_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a").join("b").join("c");
        create_dir_all(&nested).unwrap();
        assert!(nested.is_dir());
        std::fs::write(nested.join("f"), "x").unwrap();
        create_dir_all(&nested).unwrap();
        assert_eq!(std::fs::read_to_string(nested.join("f")).unwrap(), "x");
        std::fs::write(dir.path().join("file"), "").unwrap();
        assert!(create_dir_all(&dir.path().join("file").join("sub")).is_err());
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_atomic_write_keeps_or_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        write_atomically(&f, b"one", Existing::Keep).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"one");
        let e = write_atomically(&f, b"two", Existing::Keep).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&f).unwrap(), b"one", "kept");
        write_atomically(&f, b"three", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"three");
        assert_eq!(names(dir.path()), ["secret"], "no temporary file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
