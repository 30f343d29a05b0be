//! `jdbc-sink check`: validates the config and reachability without consuming.

use std::process::Command;

use cdc_tests::process::binary;
use cdc_tests::sink::SinkCase;

fn check(case: &SinkCase, config: &str) -> (i32, String) {
    let path = std::env::temp_dir().join(format!("{}-check.toml", case.database));
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(binary("jdbc-sink"))
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run jdbc-sink check");
    let _ = std::fs::remove_file(&path);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_each_dependency() {
    let case = SinkCase::new("sink_check", 1).await;
    let good = case.toml(&format!(
        "\"schema.registry.url\" = \"{}\"",
        case.stack.registry_url
    ));
    let (code, out) = check(&case, &good);
    assert_eq!(code, 0, "{out}");
    for line in [
        "ok    mirror database",
        "ok    Kafka",
        "1 matching topic(s)",
        "ok    schema registry",
    ] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }

    // A sink starts before its topics exist (the source creates them): a note, not a failure.
    let missing = format!("{}_not_yet", case.topic);
    let (code, out) = check(
        &case,
        &good.replace(
            &format!("topics = \"{}\"", case.topic),
            &format!("topics = \"{},{missing}\"", case.topic),
        ),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok    Kafka")
            && out.contains("note  Kafka")
            && out.contains(&missing)
            && out.contains("do not exist yet"),
        "{out}"
    );
    let (code, out) = check(
        &case,
        &good.replace(
            &format!("topics = \"{}\"", case.topic),
            &format!("\"topics.regex\" = \"{missing}.*\""),
        ),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("0 matching topic(s)") && out.contains("no topic matches topics.regex yet"),
        "{out}"
    );

    let wrong_password = good.replace(
        &format!("\"connection.password\" = \"{}\"", case.stack.root_password),
        "\"connection.password\" = \"wrong\"",
    );
    let (code, out) = check(&case, &wrong_password);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  mirror database") && !out.contains("wrong"),
        "{out}"
    );

    let (code, out) = check(
        &case,
        &format!("{good}\n\"batch.sise\" = 5\n")
            .replace("[kafka]", "")
            .replace("\"bootstrap.servers\"", "\"kafka.bootstrap.servers\""),
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("unknown config key `batch.sise` (did you mean `batch.size`?)"),
        "{out}"
    );
}
