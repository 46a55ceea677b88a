//! The one bounded wait of the suite: observe until a condition holds, or fail saying what was awaited and
//! what was seen last. A fixed sleep guesses how long the relay needs; this waits exactly as long as it does,
//! up to a limit.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::time::{Duration, Instant};

/// The pause after the first observation; each next one doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// Short enough that a waiting test notices a change within a few milliseconds (a burst to interrupt, a
/// state to catch), long enough not to load a busy machine with requests.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Observes with `observe` until `done` holds for what it saw, and returns that observation. Pauses 1 ms
/// after the first observation, doubling to 20 ms. Panics after `timeout`, naming `what` it waited for and the
/// last observation.
pub async fn eventually<V, Fut>(
    what: impl Display,
    timeout: Duration,
    mut observe: impl FnMut() -> Fut,
    done: impl Fn(&V) -> bool,
) -> V
where
    V: Debug,
    Fut: Future<Output = V>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        let seen = observe().await;
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "waited {timeout:?} for {what}; last seen: {seen:?}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
