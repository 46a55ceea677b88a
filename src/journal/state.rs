//! Changing a stored record: only its state ([`RecordState`]: status, reason, executions, timings) is
//! rewritten, in `alert_state`; the record as first stored (the body above all) is never rewritten.

use super::codec::{decode_state, encode_state};
use super::{Journal, JournalError};
use crate::record::RecordState;

/// A record's state as a writer last saw it (see [`Journal::update_known`]).
#[derive(Debug, Clone)]
pub struct KnownState {
    /// The bytes stored in `alert_state`; `None` while the record has no state entry yet.
    raw: Option<sled::IVec>,
    state: RecordState,
}

impl KnownState {
    /// The state stored with a record as admitted (`AlertRecord::state`), before any change: records are
    /// never rewritten once stored, so this is what a first change would read back.
    pub fn admitted(state: RecordState) -> KnownState {
        KnownState { raw: None, state }
    }
}

impl Journal {
    /// Atomically applies `f` to the state of record `id` (the closure may run more than once under
    /// contention), refreshes its status, and returns the new state; `None` when there is no such record.
    /// Only the state is rewritten: the body and the rest of the record stay as first stored.
    pub fn update(
        &self,
        id: &str,
        f: impl Fn(&mut RecordState),
    ) -> Result<Option<RecordState>, JournalError> {
        Ok(self.update_read(id, f)?.map(|(_, st)| st))
    }

    /// Like [`update`](Self::update), starting from the state the caller last saw (`known`) without
    /// reading it back: one compare-and-swap against the bytes it expects. If another writer got there
    /// first, the stored state is read and `f` applied to it instead. `known` is left holding the new
    /// state. An execution keeps one of these from its alert's admission to its end.
    pub fn update_known(
        &self,
        id: &str,
        known: &mut Option<KnownState>,
        f: impl Fn(&mut RecordState),
    ) -> Result<Option<RecordState>, JournalError> {
        if let Some(k) = known.take() {
            let mut st = k.state;
            f(&mut st);
            st.refresh_status();
            let v = sled::IVec::from(encode_state(&st)?);
            if self
                .state
                .compare_and_swap(id.as_bytes(), k.raw, Some(v.clone()))?
                .is_ok()
            {
                *known = Some(KnownState {
                    raw: Some(v),
                    state: st.clone(),
                });
                return Ok(Some(st));
            }
        }
        let out = self.update_read(id, f)?;
        *known = out.clone().map(|(raw, state)| KnownState {
            raw: Some(raw),
            state,
        });
        Ok(out.map(|(_, st)| st))
    }

    /// `update`, also returning the bytes stored.
    fn update_read(
        &self,
        id: &str,
        f: impl Fn(&mut RecordState),
    ) -> Result<Option<(sled::IVec, RecordState)>, JournalError> {
        let mut failure: Option<JournalError> = None;
        // The state as last produced by the closure (sled may retry it): returned without decoding the
        // stored bytes a second time.
        let mut produced: Option<RecordState> = None;
        let out = self.state.update_and_fetch(id.as_bytes(), |old| {
            failure = None;
            let current = match old {
                Some(raw) => decode_state(id, raw),
                // First change: the state is read out of the record itself (the body is skipped).
                None => match self.alerts.get(id.as_bytes()) {
                    Ok(Some(raw)) => decode_state(id, &raw),
                    Ok(None) => return None,
                    Err(e) => Err(e.into()),
                },
            };
            let result = current.and_then(|mut st| {
                f(&mut st);
                st.refresh_status();
                let v = encode_state(&st)?;
                produced = Some(st);
                Ok(v)
            });
            match result {
                Ok(v) => Some(v),
                Err(e) => {
                    failure = Some(e);
                    old.map(<[u8]>::to_vec)
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(out.zip(produced))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::journal::test_support::{rec, reopen};
    use crate::journal::ListFilter;
    use crate::record::Status;

    /// A known state gives the same change as reading the record back; when another writer got there
    /// first, the stored state is read and the change applied on top of it.
    #[tokio::test]
    async fn a_known_state_saves_the_read_and_yields_to_other_writers() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
        let mut recs = vec![];
        for key in ["a", "b"] {
            let mut r = rec(&j, Some(key), "aa");
            r.reason = Some("as admitted".into());
            r.timings.ack_us = Some(3);
            recs.push(r.clone());
            j.admit(r).await.unwrap();
        }
        let (a, b) = (recs[0].id.as_str(), recs[1].id.as_str());
        let executed = |st: &mut RecordState| st.status = Status::Executed;
        let read_back = j.update(a, executed).unwrap().unwrap();
        let mut known = Some(KnownState::admitted(recs[1].state()));
        let from_known = j.update_known(b, &mut known, executed).unwrap().unwrap();
        assert_eq!(read_back, from_known);
        assert_eq!(from_known.reason.as_deref(), Some("as admitted"));

        // Another writer changes b: the next change starts from what it wrote.
        j.update(b, |st| st.reason = Some("other writer".into()))
            .unwrap()
            .unwrap();
        let next = j
            .update_known(b, &mut known, |st| st.timings.ack_us = Some(9))
            .unwrap()
            .unwrap();
        assert_eq!(next.reason.as_deref(), Some("other writer"));
        assert_eq!(
            (next.status, next.timings.ack_us),
            (Status::Executed, Some(9))
        );
        // `known` followed: a further change keeps all of it, in the journal too.
        j.update_known(b, &mut known, |st| st.status = Status::Failed)
            .unwrap()
            .unwrap();
        let stored = j.get(b).unwrap().unwrap();
        assert_eq!(stored.reason.as_deref(), Some("other writer"));
        assert_eq!(
            (stored.status, stored.timings.ack_us),
            (Status::Failed, Some(9))
        );

        // A "first" change of a record that already has a state reads that state.
        let mut stale = Some(KnownState::admitted(recs[0].state()));
        let r = j
            .update_known(a, &mut stale, |st| st.timings.ack_us = Some(11))
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.timings.ack_us), (Status::Executed, Some(11)));
    }

    /// An update rewrites only the small state entry: the record as first stored (body included) is left
    /// byte for byte, reads merge the two, the state survives a reopen, and pruning removes both.
    #[tokio::test]
    async fn updates_rewrite_the_state_only_and_reads_merge_it() {
        use crate::domain::{Action, BracketRequest};
        use crate::record::Execution;
        let dir = tempfile::tempdir().unwrap();
        let id;
        let stored;
        {
            let j = Journal::open(dir.path(), Duration::from_secs(60)).unwrap();
            let mut r = rec(&j, Some("k"), "aa");
            r.body = json!({"ticker": "ES1!", "pad": "x".repeat(2000)});
            r.executions = vec![Execution::new(BracketRequest {
                account: "Sim101".into(),
                instrument: "ES 12-26".into(),
                action: Action::Buy,
                quantity: 1,
                take_profit: Some(6010.0),
                stop_loss: Some(5990.0),
                oco_id: None,
                cancel_delay_ms: None,
                relay: Default::default(),
            })];
            id = r.id.clone();
            j.admit(r).await.unwrap();
            stored = j.alerts.get(&id).unwrap().unwrap();
            assert!(
                j.state.get(&id).unwrap().is_none(),
                "no state before a change"
            );

            let st = j
                .update(&id, |st| {
                    st.executions[0].status = Status::Executed;
                    st.timings.ack_us = Some(7);
                })
                .unwrap()
                .unwrap();
            assert_eq!(
                st.status,
                Status::Executed,
                "status refreshed from executions"
            );
            assert_eq!(
                j.alerts.get(&id).unwrap().unwrap(),
                stored,
                "record untouched"
            );
            let small = j.state.get(&id).unwrap().unwrap();
            assert!(small.len() < 400, "state is {} bytes", small.len());
            assert!(j.update("01NOSUCHRECORD", |_| {}).unwrap().is_none());
            assert!(j.state.get("01NOSUCHRECORD").unwrap().is_none());
            j.flush_now().unwrap();
        }
        let j = reopen(dir.path(), Duration::from_secs(60)).unwrap();
        let got = j.get(&id).unwrap().unwrap();
        assert_eq!(got.status, Status::Executed);
        assert_eq!(got.executions[0].status, Status::Executed);
        assert_eq!(got.timings.ack_us, Some(7));
        assert_eq!(got.body["ticker"], "ES1!");
        let listed = j.list(&ListFilter::default()).unwrap();
        assert_eq!(listed[0].status, Status::Executed);
        // A state left behind by a crash between the two removals of an earlier pruning goes too.
        j.state
            .insert("00000000000000000000000000", &b"{}"[..])
            .unwrap();
        assert_eq!(j.prune_records(Duration::from_secs(3600), 0).unwrap(), 1);
        assert!(j.alerts.is_empty() && j.state.is_empty());
    }
}
