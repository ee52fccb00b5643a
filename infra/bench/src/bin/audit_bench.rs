//! `audit-bench`: what the audit log adds to each audited action, against DynamoDB
//! Local (`DYNAMODB_ENDPOINT`).
//!
//! - Latency: a team update through the store (its own conditional write, plus the
//!   head read and the event and head writes of the audit log, in one transaction),
//!   against the same update written alone without an event.
//! - Contention: `BENCH_AUDIT_WRITERS` (default 20) writers recording events at once
//!   all move the one head item; the time each record takes, and the events per
//!   second of all of them.
//! - Size: the stored event and head items in bytes, as DynamoDB counts them
//!   (attribute names plus values), which sets the write units.

use bench::{
    seed,
    stats::{ms, Summary},
};
use shared::{
    clock::format_timestamp,
    domain::audit::{Action, Origin, Target},
    store::{Store, TeamChanges},
};
use std::{process::ExitCode, time::Instant};
use time::OffsetDateTime;
use uuid::Uuid;

const ROUNDS: usize = 200;

fn line(name: &str, samples: &[std::time::Duration]) {
    if let Some(s) = Summary::of(samples) {
        println!(
            "{name:<44} n {:>4}  min {:>9}  p50 {:>9}  p99 {:>9}  max {:>9}",
            s.count,
            ms(s.min),
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        );
    }
}

/// DynamoDB's item size: the UTF-8 lengths of attribute names and values (numbers
/// and nested values approximated by their text).
fn item_bytes(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + format!("{v:?}").len()).sum()
}

/// `writers` writers recording 10 events each at once, through clones of `store` (one
/// process) or through stores of their own (separate processes).
async fn contention(store: &Store, writers: usize, shared_store: bool, label: &str) -> Result<(), String> {
    let per_writer = 10;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = if shared_store {
                store.clone()
            } else {
                Store::new(store.client().clone(), store.table())
            };
            tokio::spawn(async move {
                let mut took = Vec::new();
                for i in 0..per_writer {
                    let event = Origin::system(format_timestamp(OffsetDateTime::now_utc()))
                        .event(Action::TeamUpdated, Target::team(Uuid::nil()))
                        .fact("writer", w)
                        .fact("round", i);
                    let t = Instant::now();
                    store.record(event).await.map_err(|e| e.to_string())?;
                    took.push(t.elapsed());
                }
                Ok::<_, String>(took)
            })
        })
        .collect();
    let mut contended = Vec::new();
    for task in tasks {
        contended.extend(task.await.map_err(|e| e.to_string())??);
    }
    let wall = started.elapsed();
    println!("{writers} writers at once {label}, {per_writer} events each:");
    line("one event recorded (head contended)", &contended);
    println!(
        "{:<44} {:.0} events/s ({} events in {})",
        "throughput of the one chain",
        contended.len() as f64 / wall.as_secs_f64(),
        contended.len(),
        ms(wall)
    );
    Ok(())
}

async fn run() -> Result<(), String> {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").map_err(|_| "DYNAMODB_ENDPOINT is not set (make bench)")?;
    let writers: usize = std::env::var("BENCH_AUDIT_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(20);
    let table = format!("bench-audit-{}", Uuid::new_v4().simple());
    let app = seed::app(&endpoint, &table, &seed::random_secret()).await?;
    seed::create_table(&app).await?;
    let seeded = seed::seed(&app, 1, 1).await?;
    let team = seeded.big_team;
    let store = &app.store;
    let origin = || Origin::system(format_timestamp(OffsetDateTime::now_utc()));

    // Warm both paths.
    for i in 0..10 {
        let changes = TeamChanges {
            name: None,
            description: Some(format!("warm {i}")),
        };
        store
            .update_team(team, &changes, &format_timestamp(OffsetDateTime::now_utc()), &origin())
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut audited = Vec::with_capacity(ROUNDS);
    let mut plain = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let changes = TeamChanges {
            name: None,
            description: Some(format!(
                "round {i} of the audit benchmark, a description of typical length"
            )),
        };
        let started = Instant::now();
        store
            .update_team(team, &changes, &format_timestamp(OffsetDateTime::now_utc()), &origin())
            .await
            .map_err(|e| e.to_string())?;
        audited.push(started.elapsed());
        // The same change without the audit log: one read and one conditional write
        // of the team item, as update_team does.
        let started = Instant::now();
        let current = store
            .get_team(team)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("team gone")?;
        store
            .client()
            .update_item()
            .table_name(store.table())
            .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("TEAM#{team}")))
            .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(format!("TEAM#{team}")))
            .update_expression("SET description = :d, version = :next")
            .condition_expression("version = :seen")
            .expression_attribute_values(":d", aws_sdk_dynamodb::types::AttributeValue::S(format!("plain {i}")))
            .expression_attribute_values(
                ":next",
                aws_sdk_dynamodb::types::AttributeValue::N((current.version + 1).to_string()),
            )
            .expression_attribute_values(
                ":seen",
                aws_sdk_dynamodb::types::AttributeValue::N(current.version.to_string()),
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
        plain.push(started.elapsed());
    }
    println!("Sequential, {ROUNDS} rounds each:");
    line("team update with its audit event", &audited);
    line("the same update without an event", &plain);

    // The writers of one process take turns on the head; separate processes (separate
    // stores, each with its own client and turn) race through its condition.
    for (label, shared_store) in [("in one process", true), ("as separate processes", false)] {
        contention(store, writers, shared_store, label).await?;
    }
    let verification = store.verify_audit().await.map_err(|e| e.to_string())?;
    println!(
        "{:<44} ok = {}, {} events",
        "chain check after the run", verification.ok, verification.events
    );
    if !verification.ok {
        return Err(format!("the chain broke: {:?}", verification.first_broken));
    }

    let events = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S("AUDIT".into()))
        .limit(50)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let sizes: Vec<usize> = events.items().iter().map(item_bytes).collect();
    let biggest = sizes.iter().copied().max().unwrap_or(0);
    println!(
        "{:<44} {} to {} bytes (a transactional write costs 2 units per started KB: {} units)",
        "stored event item",
        sizes.iter().copied().min().unwrap_or(0),
        biggest,
        2 * biggest.div_ceil(1024)
    );
    println!(
        "{:<44} about 120 bytes: 2 write units; plus 1 read unit for the strongly consistent head read",
        "head item"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audit-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
