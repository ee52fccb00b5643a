//! The `ssi-runner` command line, without a table or engines: what it refuses. (Being
//! an integration test of this package, it also makes `cargo test` build the binary
//! that `tests/tests/orphans.rs` runs against the whole local stack.)

use std::process::Command;

fn ssi_runner(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ssi-runner"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("ssi-runner runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SETTINGS: &[(&str, &str)] = &[
    ("TABLE_NAME", "ssi-cli-test"),
    ("KMS_KEY_ID", "unused"),
    ("AWS_REGION", "us-east-1"),
    // Nothing listens there: these tests must never reach a table.
    ("DYNAMODB_ENDPOINT", "http://127.0.0.1:9"),
];

#[test]
fn without_its_settings_it_names_the_missing_variable_and_exits_1() {
    let (code, stdout, stderr) = ssi_runner(&["orphans"], &[]);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("TABLE_NAME"), "{stderr}");
}

#[test]
fn an_unknown_command_or_orphans_option_prints_the_usage_and_exits_1() {
    for args in [
        &["cleanup"][..],
        &["orphans", "--delete"],
        &["orphans", "--json", "extra"],
    ] {
        let (code, stdout, stderr) = ssi_runner(args, SETTINGS);
        assert_eq!(code, Some(1), "{args:?}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.contains("ssi-runner orphans [--json]"), "{args:?}: {stderr}");
    }
}
