//! The README's curl walkthrough, run as written against a fresh `vectron
//! dev` (only the port is swapped for a free one): every command must succeed
//! and answer without an error body.

use std::process::Command;

use crate::cluster_harness::DevServer;
use crate::harness::serial;

/// The shell blocks of the README's walkthrough that call the API.
fn walkthrough_commands() -> Vec<String> {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("### Walkthrough")
        .nth(1)
        .and_then(|rest| rest.split("\n### ").next())
        .expect("README has a Walkthrough section");
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        // A command ends at a line that neither continues (\) nor sits
        // inside an open single-quoted argument.
        let quotes = current.matches('\'').count();
        if !line.ends_with('\\') && quotes.is_multiple_of(2) {
            if current.contains("localhost:7333") {
                commands.push(current.clone());
            }
            current.clear();
        }
    }
    commands
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_works_as_written() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIP: curl is not installed");
        return;
    }
    let commands = walkthrough_commands();
    assert!(
        commands.len() >= 5,
        "walkthrough commands not found: {commands:?}"
    );
    let _serial = serial().await;
    let dev = DevServer::start().await;
    let port = dev.http.rsplit(':').next().expect("port").to_owned();
    let mut outputs = Vec::new();
    for command in &commands {
        let command = command.replace("localhost:7333", &format!("127.0.0.1:{port}"));
        let output = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .output()
            .expect("run sh");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{command}\nfailed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for answer in stdout.split_inclusive('}').filter(|s| !s.trim().is_empty()) {
            assert!(
                !answer.contains("\"error\""),
                "{command}\nanswered an error: {stdout}"
            );
        }
        outputs.push(stdout);
    }
    let search = outputs
        .iter()
        .find(|o| o.contains("\"results\""))
        .expect("a search answer");
    let hits: serde_json::Value = serde_json::from_str(search.trim()).expect("search JSON");
    assert_eq!(hits["results"][0]["id"], 1, "{hits}");
    assert_eq!(
        hits["results"].as_array().map(Vec::len),
        Some(1),
        "the filter leaves one point: {hits}"
    );
}
