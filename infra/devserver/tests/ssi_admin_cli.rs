//! The `ssi-admin` command line, without a table: what it refuses. (Being an
//! integration test of this package, it also makes `cargo test` build the binary that
//! `tests/tests/audit.rs` runs against DynamoDB Local.)

use std::process::Command;

#[test]
fn an_unknown_command_prints_the_usage_and_exits_1() {
    for args in [&["audit"][..], &["audit", "repair"], &["drop-table"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ssi-admin"))
            .args(args)
            .env_clear()
            .env("TABLE_NAME", "ssi-cli-test")
            // Nothing listens there: this test must never reach a table.
            .env("DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
            .output()
            .expect("ssi-admin runs");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("audit verify"), "{args:?}: {stderr}");
    }
}
