//! State across reopening: the order log, snapshots and their leftovers, retention of finished
//! orders, the old one-key-per-order layout, and the broker that shares the journal's log.

use serde_json::Value;

use super::*;

#[test]
fn state_survives_reopening_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    let (stop_id, pending_id) = {
        let db = sled::open(dir.path()).unwrap();
        let b = PaperBroker::open(
            db.open_tree("paper").unwrap(),
            config(),
            instruments(),
            clock.clone(),
        )
        .unwrap();
        b.set_quote(ES, 4500.0).unwrap();
        market(&b, Action::Buy, 2);
        let stop = b
            .place_order(
                SIM,
                &order(Action::Sell, OrderType::StopMarket, 2, Some(4490.0)),
            )
            .unwrap();
        let pending = b
            .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4400.0)))
            .unwrap();
        b.cancel_order(SIM, &pending.order_id).unwrap();
        (stop.order_id, pending.order_id)
    };
    let db = crate::test_support::retry_while_locked(|| sled::open(dir.path())).unwrap();
    let b = PaperBroker::open(
        db.open_tree("paper").unwrap(),
        config(),
        instruments(),
        clock.clone(),
    )
    .unwrap();
    assert_eq!(b.quote(ES).unwrap().last_price, 4500.0);
    let p = b.position(SIM, ES).unwrap();
    assert_eq!((p.quantity, p.average_price), (2, 4500.0));
    assert_eq!(b.orders(SIM).unwrap().len(), 3);
    assert_eq!(state(&b, SIM, &stop_id), OrderState::Working);
    assert_eq!(state(&b, SIM, &pending_id), OrderState::CancelPending);
    clock.advance(50);
    assert_eq!(state(&b, SIM, &pending_id), OrderState::Cancelled);
    // New orders continue the sequence rather than colliding with loaded ones.
    let o = b
        .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4400.0)))
        .unwrap();
    assert_eq!(o.sequence, 4);
    b.set_quote(ES, 4489.0).unwrap();
    assert_eq!(qty(&b, SIM, ES), 0);
}

#[test]
fn only_the_newest_finished_orders_are_kept() {
    let (_db, tree, clock) = scratch_tree();
    let cfg = PaperConfig {
        max_terminal_orders: 3,
        ..config()
    };
    let b = PaperBroker::open(tree.clone(), cfg, instruments(), clock.clone()).unwrap();
    b.set_quote(ES, 4500.0).unwrap();
    // A stop placed first, finished last: it must survive pruning even though it is the oldest order.
    let early = b
        .place_order(
            SIM,
            &order(Action::Sell, OrderType::StopMarket, 1, Some(4000.0)),
        )
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        clock.advance(1);
        ids.push(market(&b, Action::Buy, 1).order_id);
    }
    b.place_order(OTHER, &order(Action::Buy, OrderType::Market, 1, None))
        .unwrap();
    clock.advance(1);
    b.cancel_order(SIM, &early.order_id).unwrap();
    clock.advance(50);
    let kept: Vec<OrderId> = b
        .orders(SIM)
        .unwrap()
        .into_iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(kept, vec![early.order_id, ids[3].clone(), ids[4].clone()]);
    assert_eq!(b.orders(OTHER).unwrap().len(), 1);
    // Pruning forgets orders, never positions.
    assert_eq!(qty(&b, SIM, ES), 5);
    // The pruned orders are gone from disk too.
    let cfg = PaperConfig {
        max_terminal_orders: 3,
        ..config()
    };
    let again = PaperBroker::open(tree, cfg, instruments(), clock).unwrap();
    assert_eq!(again.orders(SIM).unwrap(), b.orders(SIM).unwrap());
    assert_eq!(again.orders(OTHER).unwrap().len(), 1);
}

/// Only a broker opened in the journal's own database tells the engine its writes share the journal's log
/// (which lets the engine skip waiting for the `executing` mark); one on any other tree does not.
#[test]
fn only_a_broker_beside_the_journal_shares_its_log() {
    let (b, _) = open();
    assert!(!b.shares_journal_log());

    let dir = tempfile::tempdir().unwrap();
    let journal =
        crate::journal::Journal::open(dir.path(), std::time::Duration::from_secs(60)).unwrap();
    let b = PaperBroker::open_beside_journal(
        &journal,
        config(),
        instruments(),
        Arc::new(ManualClock::default()),
    )
    .unwrap();
    assert!(b.shares_journal_log());
}

/// Everything a reopened broker shows, to compare with the broker that wrote it.
fn venue(b: &PaperBroker) -> (Vec<Order>, Vec<Position>, Vec<Option<f64>>) {
    let mut orders = b.orders(SIM).unwrap();
    orders.extend(b.orders(OTHER).unwrap());
    let mut positions = b.positions(SIM).unwrap();
    positions.extend(b.positions(OTHER).unwrap());
    let quotes = [ES, NQ]
        .iter()
        .map(|i| b.quote(i).ok().map(|q| q.last_price))
        .collect();
    (orders, positions, quotes)
}

fn log_entries(tree: &sled::Tree) -> usize {
    tree.scan_prefix(b"l").count()
}

/// A day of trading in miniature: quotes, brackets, cancels, fills and pruning, on both accounts.
fn trade(b: &PaperBroker, clock: &ManualClock, rounds: u32) {
    b.set_quote(ES, 4500.0).unwrap();
    b.set_quote(NQ, 16000.0).unwrap();
    for i in 0..rounds {
        let account = if i % 2 == 0 { SIM } else { OTHER };
        clock.advance(7);
        b.place_order(account, &order(Action::Buy, OrderType::Market, 1, None))
            .unwrap();
        let req = BracketRequest {
            account: account.into(),
            ..bracket(Action::Buy, 3, Some(4510.0), Some(4490.0))
        };
        let ticket = b.bracket_begin(&req).unwrap();
        b.bracket_finish(ticket).unwrap();
        let nq = b
            .place_order(
                account,
                &PlaceOrder {
                    instrument: NQ.into(),
                    ..order(Action::Buy, OrderType::Limit, 1, Some(15990.0))
                },
            )
            .unwrap();
        if i % 3 == 0 {
            b.cancel_order(account, &nq.order_id).unwrap();
        }
        let tick = if i % 4 == 0 { 0.25 } else { -0.25 };
        b.set_quote(ES, 4500.0 + tick).unwrap();
    }
}

#[test]
fn state_survives_snapshots_and_the_log_after_them() {
    let (_db, tree, clock) = scratch_tree();
    let cfg = PaperConfig {
        max_terminal_orders: 20,
        ..config()
    };
    let open = |every| {
        PaperBroker::open(
            tree.clone(),
            PaperConfig {
                snapshot_every: every,
                ..cfg.clone()
            },
            instruments(),
            clock.clone(),
        )
        .unwrap()
    };
    let b = open(5);
    trade(&b, &clock, 40);
    // Several snapshots were taken, and the log stayed within its ring of 2 × 5 slots.
    assert!(header(&tree)["generation"].as_u64().unwrap() > 10);
    assert_eq!(log_entries(&tree), 10);
    let before = venue(&b);
    assert!(before.0.len() > 30, "{} orders", before.0.len());
    assert!(before
        .0
        .iter()
        .any(|o| o.state == OrderState::CancelPending));

    let again = open(5);
    assert_eq!(venue(&again), before);
    // Sequence numbers continue after the loaded ones.
    let next = again
        .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4400.0)))
        .unwrap();
    assert!(before.0.iter().all(|o| o.sequence < next.sequence));

    // With no snapshot at all, the log alone rebuilds the same venue.
    let (_db2, tree2, clock2) = scratch_tree();
    let open2 = || {
        PaperBroker::open(
            tree2.clone(),
            PaperConfig {
                snapshot_every: config::MAX_SNAPSHOT_EVERY,
                ..cfg.clone()
            },
            instruments(),
            clock2.clone(),
        )
        .unwrap()
    };
    let c = open2();
    trade(&c, &clock2, 40);
    assert!(tree2.get(b"S").unwrap().is_none());
    assert!(log_entries(&tree2) > 100);
    assert_eq!(venue(&open2()), venue(&c));
}

fn header(tree: &sled::Tree) -> Value {
    serde_json::from_slice(&tree.get(b"S").unwrap().expect("a snapshot header")).unwrap()
}

/// The slot key and the value stored there, for log entry `n` in a ring of `ring` slots.
fn slot(tree: &sled::Tree, n: u64, ring: u64) -> (Vec<u8>, Option<sled::IVec>) {
    let mut key = vec![b'l'];
    key.extend(((n % ring) as u32).to_be_bytes());
    let value = tree.get(&key).unwrap();
    (key, value)
}

#[test]
fn leftovers_of_an_interrupted_snapshot_are_skipped_and_a_gap_in_the_log_is_refused() {
    let (_db, tree, clock) = scratch_tree();
    let open = || {
        PaperBroker::open(
            tree.clone(),
            PaperConfig {
                snapshot_every: 4,
                ..config()
            },
            instruments(),
            clock.clone(),
        )
    };
    let b = open().unwrap();
    trade(&b, &clock, 6);
    let h = header(&tree);
    let (generation, upto) = (
        h["generation"].as_u64().unwrap(),
        h["upto"].as_u64().unwrap(),
    );
    // Two operations after the snapshot, so the log has entries past it (4 per snapshot).
    b.set_quote(NQ, 16000.25).unwrap();
    b.set_quote(NQ, 16000.5).unwrap();
    assert_eq!(header(&tree)["upto"].as_u64().unwrap(), upto);
    let before = venue(&b);

    // A crash while writing the next generation: a chunk of the other parity that no header names. And
    // an entry the snapshot already includes, unreadable. Neither is even decoded.
    let mut orphan_chunk = vec![b'c', ((generation + 1) % 2) as u8];
    orphan_chunk.extend(999u32.to_be_bytes());
    tree.insert(&orphan_chunk, &b"not json"[..]).unwrap();
    let (covered, _) = slot(&tree, upto, 8);
    let mut junk = upto.to_be_bytes().to_vec();
    junk.extend(b"not json");
    tree.insert(&covered, junk).unwrap();
    let again = open().unwrap();
    assert_eq!(venue(&again), before);
    // The next snapshot, of that parity, removes the orphan chunk.
    trade(&again, &clock, 2);
    assert!(header(&tree)["generation"].as_u64().unwrap() > generation);
    assert!(tree.get(&orphan_chunk).unwrap().is_none());
    let after = venue(&again);
    // From here on the reopened broker is the only one writing.
    let again = open().unwrap();
    assert_eq!(venue(&again), after);

    // An entry after the snapshot that is not there: refused, naming it, rather than skipped. It needs
    // two entries past the snapshot, so that one is missing before the other.
    let mut price = 16000.75;
    let upto = loop {
        again.set_quote(NQ, price).unwrap();
        price += 0.25;
        let upto = header(&tree)["upto"].as_u64().unwrap();
        if slot(&tree, upto + 2, 8)
            .1
            .is_some_and(|v| v[..8] == (upto + 2).to_be_bytes())
        {
            break upto;
        }
    };
    let (missing, value) = slot(&tree, upto + 1, 8);
    assert_eq!(value.unwrap()[..8], (upto + 1).to_be_bytes());
    tree.remove(&missing).unwrap();
    let err = open().unwrap_err().to_string();
    assert!(
        err.contains(&format!("log entry {} is missing", upto + 1)),
        "{err}"
    );
}

#[test]
fn a_tree_in_the_old_one_key_per_order_layout_is_converted() {
    let (b, clock) = open();
    trade(&b, &clock, 5);
    let before = venue(&b);
    // The layout written before the log: o/{account}/{id}, p/{account}/{instrument}, q/{instrument}.
    let (_db, tree, _) = scratch_tree();
    for o in &before.0 {
        let key = format!("o/{}/{}", o.account, o.order_id);
        tree.insert(key, serde_json::to_vec(o).unwrap()).unwrap();
    }
    for p in &before.1 {
        let key = format!("p/{}/{}", p.account, p.instrument);
        tree.insert(key, serde_json::to_vec(p).unwrap()).unwrap();
    }
    for (i, q) in [ES, NQ].iter().zip(&before.2) {
        let price = q.unwrap();
        tree.insert(format!("q/{i}"), serde_json::to_vec(&price).unwrap())
            .unwrap();
    }
    let open = || PaperBroker::open(tree.clone(), config(), instruments(), clock.clone()).unwrap();
    assert_eq!(venue(&open()), before);
    for prefix in ["o/", "p/", "q/"] {
        assert_eq!(tree.scan_prefix(prefix).count(), 0, "{prefix} keys left");
    }
    assert!(tree.get(b"S").unwrap().is_some());
    assert_eq!(venue(&open()), before);
}

#[test]
fn accounts_and_instruments_dropped_from_the_config_survive_snapshots() {
    let (_db, tree, clock) = scratch_tree();
    let open = |cfg: PaperConfig| {
        PaperBroker::open(
            tree.clone(),
            PaperConfig {
                snapshot_every: 2,
                ..cfg
            },
            instruments(),
            clock.clone(),
        )
        .unwrap()
    };
    let b = open(config());
    trade(&b, &clock, 4);
    let before = venue(&b);
    assert!(!b.orders(OTHER).unwrap().is_empty());
    // Without Sim102 for a while, with snapshots taken in the meantime...
    let only_sim = PaperConfig {
        accounts: vec![SIM.into()],
        ..config()
    };
    let narrow = open(only_sim);
    for _ in 0..5 {
        narrow.set_quote(ES, 4500.0).unwrap();
        narrow.set_quote(ES, 4500.25).unwrap();
    }
    narrow.set_quote(ES, before.2[0].unwrap()).unwrap();
    // ...and back: Sim102's orders and positions are as it left them.
    let back = open(config());
    assert_eq!(back.orders(OTHER).unwrap(), b.orders(OTHER).unwrap());
    assert_eq!(back.positions(OTHER).unwrap(), b.positions(OTHER).unwrap());
}
