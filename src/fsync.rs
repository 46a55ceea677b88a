//! Making new files survive a power loss: a file's contents are synced through the file, its name through
//! the directory that holds it. For the small files the relay writes once (secrets, the journal's id) and the
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

/// Creates (or replaces, as `opts` say) the file at `path` holding `contents`, and makes both its contents
/// and its directory entry durable before returning.
pub fn write_durably(
    opts: &std::fs::OpenOptions,
    path: &Path,
    contents: &[u8],
) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
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
}
