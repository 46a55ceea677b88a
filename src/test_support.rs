//! Helpers shared by the unit tests.

use std::fmt::Display;
use std::time::Duration;

/// Runs `open` (a sled database, or something built on one) until it stops failing because the file lock
/// is still held: after the last handle is dropped, sled releases the lock from a background thread, so a
/// test that reopens a database in the same process may find it held for a moment. Other errors, and a
/// lock held for 2 s, are returned as they are.
pub(crate) fn retry_while_locked<T, E: Display>(
    mut open: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    for _ in 0..200 {
        match open() {
            Err(e) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => return other,
        }
    }
    open()
}
