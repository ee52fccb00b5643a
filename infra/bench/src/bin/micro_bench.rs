//! `micro-bench`: simple timing loops over the hot pieces of the shared crate — JWT
//! issue and verify, argon2id hash and verify, cursor seal and open, and the
//! `serde_dynamo` mapping of a user and a team item. Each one is warmed up, then run
//! in batches sized to about `BENCH_MICRO_BATCH_MS` (default 50 ms, at least one
//! operation); the median over `BENCH_MICRO_BATCHES` batches (default 15) is reported
//! in ns per operation, with the fastest and slowest batch.

use aws_sdk_dynamodb::types::AttributeValue;
use bench::{
    env_number,
    stats::{median, ns},
};
use shared::{
    auth::{jwt::TokenService, password},
    clock::format_timestamp,
    cursor::CursorSealer,
    model::{Team, User},
    store::Item,
};
use std::{
    collections::HashMap,
    hint::black_box,
    time::{Duration, Instant},
};
use uuid::Uuid;

/// One measured operation: `run(n)` performs `n` operations and returns the time
/// they took (any setup happens before its clock starts).
struct Bench<'a> {
    name: &'a str,
    run: Box<dyn FnMut(u64) -> Duration + 'a>,
}

struct Measured {
    median_ns: f64,
    min_ns: f64,
    max_ns: f64,
    ops_per_batch: u64,
    batches: usize,
}

fn measure(bench: &mut Bench<'_>, batch_target: Duration, batches: usize) -> Measured {
    // Warm-up and calibration: double the count until one batch takes >= 10 ms.
    let mut n = 1u64;
    let per_op = loop {
        let took = (bench.run)(n);
        if took >= Duration::from_millis(10) || n >= 1 << 30 {
            break took.as_secs_f64() / n as f64;
        }
        n *= 2;
    };
    let ops_per_batch = ((batch_target.as_secs_f64() / per_op).round() as u64).max(1);
    let mut per_op_ns: Vec<f64> = (0..batches)
        .map(|_| (bench.run)(ops_per_batch).as_secs_f64() * 1e9 / ops_per_batch as f64)
        .collect();
    let min_ns = per_op_ns.iter().copied().fold(f64::INFINITY, f64::min);
    let max_ns = per_op_ns.iter().copied().fold(0.0, f64::max);
    Measured {
        median_ns: median(&mut per_op_ns),
        min_ns,
        max_ns,
        ops_per_batch,
        batches,
    }
}

fn timed(n: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed()
}

fn user() -> User {
    let now = format_timestamp(time::OffsetDateTime::now_utc());
    let mut user = User::new(
        "ada.lovelace@example.com",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3B3cq2+0YNEmmB7VsqkEQvwfnQ8Wb4T8OUMl6Q0eJp0".into(),
        false,
        &now,
    );
    user.team_id = Some(Uuid::new_v4());
    user
}

fn team() -> Team {
    let now = format_timestamp(time::OffsetDateTime::now_utc());
    Team {
        id: Uuid::new_v4(),
        name: "Platform".into(),
        description: "Runs the shared infrastructure: clusters, databases, buckets and the pipelines.".into(),
        created_by: Uuid::new_v4(),
        created_at: now.clone(),
        updated_at: now,
        member_count: 20,
        version: 3,
        deleting: false,
        requests_created: 0,
        budget: None,
    }
}

/// The start key of a `GET /teams` page (a GSI1 key): what a cursor seals.
fn cursor_key() -> Item {
    let id = Uuid::new_v4();
    let created = format_timestamp(time::OffsetDateTime::now_utc());
    HashMap::from([
        ("PK".to_string(), AttributeValue::S(format!("TEAM#{id}"))),
        ("SK".to_string(), AttributeValue::S(format!("TEAM#{id}"))),
        ("GSI1PK".to_string(), AttributeValue::S("TEAMS".into())),
        ("GSI1SK".to_string(), AttributeValue::S(format!("TEAM#{created}#{id}"))),
    ])
}

fn main() {
    let batch_target = Duration::from_millis(env_number("BENCH_MICRO_BATCH_MS", 50));
    let batches: usize = env_number("BENCH_MICRO_BATCHES", 15);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let key: [u8; 32] = rand::random();
    let tokens = TokenService::new(&key, "ssi-api", "ssi-api", Duration::from_secs(3600));
    let now = time::OffsetDateTime::now_utc();
    let token = tokens.issue(Uuid::new_v4(), 0, now).expect("issue").access_token;
    let hash = rt.block_on(password::hash(bench::seed::PASSWORD.into())).expect("hash");
    let sealer = CursorSealer::new(&rand::random());
    let page_key = cursor_key();
    let cursor = sealer.seal("teams", &page_key).expect("seal");
    let (u, t) = (user(), team());
    let user_item: Item = serde_dynamo::to_item(&u).expect("user item");
    let team_item: Item = serde_dynamo::to_item(&t).expect("team item");

    let mut benches: Vec<Bench<'_>> = vec![
        Bench {
            name: "JWT issue (HS256)",
            run: Box::new(|n| {
                timed(n, || {
                    black_box(tokens.issue(black_box(Uuid::nil()), 0, now).expect("issue"));
                })
            }),
        },
        Bench {
            name: "JWT verify (HS256, claims checked)",
            run: Box::new(|n| {
                timed(n, || {
                    black_box(tokens.verify(black_box(&token), now).expect("verify"));
                })
            }),
        },
        Bench {
            name: "password hash (argon2id m=19456 t=2 p=1)",
            run: Box::new(|n| {
                timed(n, || {
                    black_box(rt.block_on(password::hash(bench::seed::PASSWORD.into())).expect("hash"));
                })
            }),
        },
        Bench {
            name: "password verify (argon2id, correct)",
            run: Box::new(|n| {
                timed(n, || {
                    let ok = rt
                        .block_on(password::verify(bench::seed::PASSWORD.into(), Some(hash.clone())))
                        .expect("verify");
                    assert!(black_box(ok));
                })
            }),
        },
        Bench {
            name: "password policy check (zxcvbn)",
            run: Box::new(|n| {
                timed(n, || {
                    password::check_policy("password", black_box(bench::seed::PASSWORD), &["ada@example.com"])
                        .expect("strong enough");
                })
            }),
        },
        Bench {
            name: "cursor seal (AES-256-GCM)",
            run: Box::new(|n| {
                timed(n, || {
                    black_box(sealer.seal("teams", black_box(&page_key)).expect("seal"));
                })
            }),
        },
        Bench {
            name: "cursor open",
            run: Box::new(|n| {
                timed(n, || {
                    black_box(sealer.open("teams", black_box(&cursor)).expect("open"));
                })
            }),
        },
        Bench {
            name: "User -> item (serde_dynamo::to_item)",
            run: Box::new(|n| {
                timed(n, || {
                    let item: Item = serde_dynamo::to_item(black_box(&u)).expect("to_item");
                    black_box(item);
                })
            }),
        },
        Bench {
            name: "item -> User (serde_dynamo::from_item)",
            run: Box::new(|n| {
                // from_item takes the item by value: the clones are made before the clock starts.
                let items: Vec<Item> = (0..n).map(|_| user_item.clone()).collect();
                let start = Instant::now();
                for item in items {
                    let back: User = serde_dynamo::from_item(item).expect("from_item");
                    black_box(back);
                }
                start.elapsed()
            }),
        },
        Bench {
            name: "Team -> item (serde_dynamo::to_item)",
            run: Box::new(|n| {
                timed(n, || {
                    let item: Item = serde_dynamo::to_item(black_box(&t)).expect("to_item");
                    black_box(item);
                })
            }),
        },
        Bench {
            name: "item -> Team (serde_dynamo::from_item)",
            run: Box::new(|n| {
                let items: Vec<Item> = (0..n).map(|_| team_item.clone()).collect();
                let start = Instant::now();
                for item in items {
                    let back: Team = serde_dynamo::from_item(item).expect("from_item");
                    black_box(back);
                }
                start.elapsed()
            }),
        },
    ];

    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("== Micro-benchmarks ({profile} build, one thread) ==");
    println!(
        "median ns/op over {batches} batches of ~{} ms each, after warm-up; min and max are the fastest and slowest batch",
        batch_target.as_millis()
    );
    println!(
        "  {:<42} {:>16} {:>16} {:>16} {:>12}",
        "operation", "median", "min", "max", "ops/batch"
    );
    for bench in &mut benches {
        let m = measure(bench, batch_target, batches);
        println!(
            "  {:<42} {:>16} {:>16} {:>16} {:>12}",
            bench.name,
            ns(m.median_ns),
            ns(m.min_ns),
            ns(m.max_ns),
            format!("{} x{}", m.ops_per_batch, m.batches)
        );
    }
}
