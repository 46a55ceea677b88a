//! How an execution's loop ended, and the one rule that turns it into a recorded status.

use std::time::Duration;

use crate::command::Command;
use crate::domain::BracketOutcome;
use crate::error::KILL_SWITCH_REASON;
use crate::executor::ExecError;
use crate::record::{Attempt, Status};

/// How the execution loop ended.
pub(super) enum End {
    /// The broker answered the last attempt (or it failed in a way that ends the retries).
    Answered(Result<BracketOutcome, ExecError>, Attempt),
    /// The engine stopped before making another attempt.
    Halted(Halt),
}

/// Why the engine made no (further) attempt.
pub(super) enum Halt {
    KillSwitch,
    /// The outbound budget had no room within `max_wait`; the message says so in words.
    RateLimited(String),
}

impl Halt {
    fn reason(&self) -> &str {
        match self {
            Halt::KillSwitch => KILL_SWITCH_REASON,
            Halt::RateLimited(msg) => msg,
        }
    }
}

/// The final state of one execution, as recorded.
pub(super) struct Settled {
    pub(super) status: Status,
    /// The outcome, or the error text for the record.
    pub(super) result: Result<BracketOutcome, String>,
    /// The attempt that ended the loop, recorded with the final state in one write.
    pub(super) last_attempt: Option<Attempt>,
    pub(super) unauthorized: bool,
}

impl End {
    /// Decides the final status. Once any attempt may have reached the broker (`maybe_sent`), nothing that
    /// happens afterwards — a failed retry, the kill switch, an exhausted outbound budget — can make the
    /// outcome known: the bracket may be live, so the execution ends `unknown`, never `rejected` or `failed`.
    pub(super) fn settle(self, maybe_sent: bool, max_age: Duration) -> Settled {
        let unknown = |why: String| {
            format!(
                "outcome unknown: {why}; not retried past the {}s age limit: check the account",
                max_age.as_secs()
            )
        };
        match self {
            End::Answered(Ok(outcome), attempt) => Settled {
                status: Status::Executed,
                result: Ok(outcome),
                last_attempt: Some(attempt),
                unauthorized: false,
            },
            End::Answered(Err(ExecError::Unknown(msg)), attempt) => Settled {
                status: Status::Unknown,
                result: Err(unknown(msg)),
                last_attempt: Some(attempt),
                unauthorized: false,
            },
            End::Answered(Err(e), attempt) if maybe_sent => Settled {
                status: Status::Unknown,
                result: Err(unknown(format!(
                    "an earlier attempt may have reached the broker; the last one: {e}"
                ))),
                last_attempt: Some(attempt),
                unauthorized: matches!(e, ExecError::Unauthorized(_)),
            },
            End::Answered(Err(e), attempt) => Settled {
                status: Status::Failed,
                unauthorized: matches!(e, ExecError::Unauthorized(_)),
                result: Err(e.to_string()),
                last_attempt: Some(attempt),
            },
            End::Halted(halt) if maybe_sent => Settled {
                status: Status::Unknown,
                result: Err(format!(
                    "outcome unknown: an earlier attempt may have reached the broker, and no retry was made ({}): check the account",
                    halt.reason()
                )),
                last_attempt: None,
                unauthorized: false,
            },
            End::Halted(halt) => Settled {
                status: Status::Rejected,
                result: Err(halt.reason().to_string()),
                last_attempt: None,
                unauthorized: false,
            },
        }
    }
}

/// A wait in words: milliseconds below a second (so 10 ms is never "0.0s"), else seconds.
pub(super) fn fmt_wait(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// How a step of a job ended, for the steps after it.
pub(super) enum StepEnd {
    /// Executed, or skipped by its gate: the next step may run.
    Continue,
    /// Failed, unknown, rejected...: the steps after it do not run; the words say why.
    Stop(String),
}

impl StepEnd {
    pub(super) fn of(index: usize, cmd: &Command, status: Status) -> StepEnd {
        match status {
            Status::Executed | Status::Skipped => StepEnd::Continue,
            other => StepEnd::Stop(format!(
                "not run: step {} ({}) ended {}",
                index + 1,
                cmd.name(),
                other.as_str()
            )),
        }
    }
}

/// What reading the account's position came to.
pub(super) enum Read {
    Held(i64),
    /// No answer worth acting on: the step ends with this status and reason, nothing sent.
    Refused(Status, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status: &str) -> Attempt {
        Attempt {
            at_ms: 0,
            transport: "crosstrade-http".into(),
            status: status.into(),
            error: None,
            duration_ms: 0,
        }
    }

    const AGE: Duration = Duration::from_secs(30);

    /// Every way the loop can end, before and after an attempt that may have reached the broker: once one
    /// may have, the execution never ends `rejected` or `failed`.
    #[test]
    fn a_maybe_sent_bracket_always_ends_unknown() {
        let rate = || Halt::RateLimited("rate limited: waited 10 ms".into());
        let cases: Vec<(End, bool, Status)> = vec![
            (End::Halted(Halt::KillSwitch), false, Status::Rejected),
            (End::Halted(Halt::KillSwitch), true, Status::Unknown),
            (End::Halted(rate()), false, Status::Rejected),
            (End::Halted(rate()), true, Status::Unknown),
            (
                End::Answered(
                    Err(ExecError::Transient("refused".into())),
                    attempt("transient"),
                ),
                false,
                Status::Failed,
            ),
            (
                End::Answered(
                    Err(ExecError::Transient("refused".into())),
                    attempt("transient"),
                ),
                true,
                Status::Unknown,
            ),
            (
                End::Answered(Err(ExecError::Rejected("bad".into())), attempt("rejected")),
                true,
                Status::Unknown,
            ),
            (
                End::Answered(
                    Err(ExecError::Unknown("timeout".into())),
                    attempt("unknown"),
                ),
                false,
                Status::Unknown,
            ),
        ];
        for (end, maybe_sent, want) in cases {
            let s = end.settle(maybe_sent, AGE);
            assert_eq!(s.status, want, "maybe_sent {maybe_sent}: {:?}", s.result);
            let err = s.result.unwrap_err();
            if want == Status::Unknown {
                assert!(err.starts_with("outcome unknown"), "{err}");
            }
        }
    }

    #[test]
    fn halted_rejections_keep_their_reason() {
        let s = End::Halted(Halt::KillSwitch).settle(false, AGE);
        assert_eq!(s.result.unwrap_err(), KILL_SWITCH_REASON);
        let s = End::Halted(Halt::KillSwitch).settle(true, AGE);
        assert!(s.result.unwrap_err().contains("(kill switch)"));
    }

    #[test]
    fn waits_below_a_second_are_in_milliseconds() {
        assert_eq!(fmt_wait(Duration::from_millis(10)), "10 ms");
        assert_eq!(fmt_wait(Duration::from_millis(999)), "999 ms");
        assert_eq!(fmt_wait(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_wait(Duration::from_secs(30)), "30.0s");
    }
}
