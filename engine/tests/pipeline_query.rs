//! Queries through the ring (SPEC 14): a depth query and an account report submitted to the
//! running pipeline between transactions are answered by the engine stage in sequence, each
//! equal to the answer on the state after exactly the transactions submitted before it, while
//! the transactions keep flowing (nothing journaled or applied for a query).

use verex_engine::catalog::Catalog;
use verex_engine::runtime::{MemorySink, Pipeline, PipelineConfig, Query, QueryItem, Subscriber};
use verex_engine::sequencer::Clock;
use verex_engine::signing::{dev_account_key, dev_role_key, Role};
use verex_engine::tx::{AddAsset, AddMarket, Deposit, Op, OrderRef, Place, Side, TimeInForce};
use verex_engine::{Client, Event, Exchange, VerifiedTx};

/// Collects every answer: (tag, after seq, items, complete).
#[derive(Default)]
struct Answers {
    answers: Vec<(u64, u64, Vec<QueryItem>, bool)>,
    events: u64,
}

impl Subscriber for Answers {
    fn on_event(&mut self, _seq: u64, _event: &Event, _catalog: &Catalog) {
        self.events += 1;
    }

    fn on_query_item(&mut self, tag: u64, after_seq: u64, item: &QueryItem, _catalog: &Catalog) {
        match self.answers.last_mut() {
            Some((last_tag, _, items, false)) if *last_tag == tag => items.push(*item),
            _ => self.answers.push((tag, after_seq, vec![*item], false)),
        }
    }

    fn on_query_end(&mut self, tag: u64, after_seq: u64) {
        match self.answers.last_mut() {
            Some((last_tag, _, _, done)) if *last_tag == tag && !*done => *done = true,
            _ => self.answers.push((tag, after_seq, Vec::new(), true)),
        }
    }
}

fn workload() -> Vec<VerifiedTx> {
    let mut admin = Client::new(dev_role_key(Role::Admin));
    let mut custody = Client::new(dev_role_key(Role::Custody));
    let mut users: Vec<Client> = (1..=3).map(|a| Client::resume(dev_account_key(a), a, 0)).collect();
    let mut txs = vec![
        admin.sign(AddAsset::named("USDC", 6).expect("asset")),
        admin.sign(AddAsset::named("BTC", 8).expect("asset")),
        admin.sign(AddMarket::spot("BTC-USDC", "BTC", "USDC", "0.01", "0.0001").expect("market")),
    ];
    for user in &mut users {
        txs.push(user.sign(Op::CreateAccount));
    }
    for account in 1..=3 {
        txs.push(custody.sign(Deposit::of(account, "USDC", "100000").expect("deposit")));
        txs.push(custody.sign(Deposit::of(account, "BTC", "100").expect("deposit")));
    }
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..600u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let user = &mut users[(x % 3) as usize];
        let price = format!("{}.{:02}", 99 + (x >> 8) % 3, (x >> 12) % 100);
        let qty = format!("0.{:04}", 1 + (x >> 20) % 500);
        let side = if (x >> 30).is_multiple_of(2) { Side::Buy } else { Side::Sell };
        let op: Op = match (x >> 32) % 6 {
            0 => Op::Cancel(OrderRef::id("BTC-USDC", 1 + (x >> 40) % (i + 1)).expect("ref")),
            1 => Place::limit("BTC-USDC", side, &price, &qty).expect("order").tif(TimeInForce::Ioc).into(),
            _ => Place::limit("BTC-USDC", side, &price, &qty).expect("order").into(),
        };
        txs.push(user.sign(op));
    }
    txs
}

#[test]
fn queries_are_answered_in_sequence_with_the_transactions() {
    let txs = workload();
    let config = PipelineConfig::for_this_machine(Clock::Deterministic);
    let mut direct = Exchange::dev().expect("exchange");
    let mut pipeline =
        Pipeline::start(direct.engine().clone(), MemorySink::with_capacity(1024), Answers::default(), config)
            .expect("pipeline");
    let mut expected = Vec::new();
    for (i, tx) in (0u64..).zip(&txs) {
        pipeline.submit(tx, None, i).expect("submit");
        direct.submit(tx).expect("direct");
        if i.is_multiple_of(7) {
            let queries = [Query::Depth { market: 0, levels: 5 }, Query::Account { account: 1 + i % 4 }];
            for (k, query) in (0u64..).zip(queries) {
                let tag = 1_000_000 + 2 * i + k;
                pipeline.submit_query(query, tag).expect("query");
                let mut items = Vec::new();
                query.answer(direct.engine(), |item| items.push(item));
                expected.push((tag, direct.engine().seq(), items, true));
            }
        }
    }
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.engine.state_hash(), direct.engine().state_hash(), "queries changed nothing");
    assert_eq!(stopped.sink.records().len(), txs.len(), "queries are not journaled");
    let answers = stopped.subscriber.answers;
    assert_eq!(answers.len(), expected.len());
    for (got, want) in answers.iter().zip(&expected) {
        assert_eq!(got, want, "query {} after seq {}", want.0, want.1);
    }
    // The workload leaves books and orders to report, and account 4 does not exist.
    assert!(expected.iter().any(|(_, _, items, _)| items.iter().any(|i| matches!(i, QueryItem::Level { .. }))));
    assert!(expected.iter().any(|(_, _, items, _)| items.iter().any(|i| matches!(i, QueryItem::Order(_)))));
    assert!(expected.iter().any(|(_, _, items, _)| items == &[QueryItem::NotFound]));
}
