//! Runs the built `vectron` binary and checks its command line against the
//! contract documented in the README and docs/.

use std::process::{Command, Output};

fn vectron(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vectron"));
    cmd.args(args).env_remove("RUST_LOG");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("vectron binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every subcommand with the flags its documentation gives it.
const CONTRACT: &[(&str, &[&str])] = &[
    (
        "dev",
        &["--data-dir", "--http-addr", "--grpc-addr", "--auth"],
    ),
    (
        "playground",
        &["--pd", "--workers", "--base-port", "--data-dir", "--auth"],
    ),
    (
        "pd",
        &[
            "--node-id",
            "--addr",
            "--advertise-addr",
            "--initial-members",
            "--data-dir",
            "--join",
        ],
    ),
    (
        "worker",
        &[
            "--name",
            "--addr",
            "--advertise-addr",
            "--pd-endpoints",
            "--data-dir",
            "--zone",
        ],
    ),
    ("auth", &["--addr", "--pd-endpoints", "--jwt-secret-file"]),
    (
        "gateway",
        &[
            "--http-addr",
            "--grpc-addr",
            "--pd-endpoints",
            "--auth-endpoint",
            "--no-auth",
        ],
    ),
    ("version", &[]),
];

#[test]
fn top_level_help_lists_every_subcommand() {
    let output = vectron(&["--help"], &[]);
    assert!(output.status.success());
    let help = stdout(&output);
    for (command, _) in CONTRACT {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{command} "))),
            "`vectron --help` does not list {command}:\n{help}"
        );
    }
}

#[test]
fn every_subcommand_help_shows_the_contract_flags() {
    for (command, flags) in CONTRACT {
        let output = vectron(&[command, "--help"], &[]);
        assert!(output.status.success(), "vectron {command} --help failed");
        let help = stdout(&output);
        for flag in *flags {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "`vectron {command} --help` lacks {flag}:\n{help}"
            );
        }
        // Every flag documents its environment variable (except --help/--version).
        for flag in *flags {
            let env = format!("VECTRON_{}", flag[2..].replace('-', "_").to_uppercase());
            assert!(
                help.contains(&env),
                "`vectron {command} --help` does not mention {env}"
            );
        }
    }
}

#[test]
fn version_prints_the_crate_version() {
    let output = vectron(&["version"], &[]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output).trim(),
        format!("vectron {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn flags_are_read_from_the_environment() {
    let output = vectron(&["playground"], &[("VECTRON_BASE_PORT", "not-a-port")]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("--base-port") && err.contains("not-a-port"),
        "{err}"
    );
}

#[test]
fn invalid_initial_members_are_rejected_by_name() {
    let output = vectron(&["pd", "--node-id", "1"], &[]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("--initial-members"), "{err}");
}

#[test]
fn auth_names_an_unreadable_secret_file() {
    let output = vectron(
        &[
            "auth",
            "--addr",
            "127.0.0.1:0",
            "--jwt-secret-file",
            "/nonexistent/vectron/jwt-secret",
            "--insecure-internal",
        ],
        &[],
    );
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("/nonexistent/vectron/jwt-secret"), "{err}");
}

#[test]
fn server_roles_refuse_to_start_without_an_internal_tls_choice() {
    let output = vectron(&["worker", "--pd-endpoints", "127.0.0.1:1"], &[]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("--internal-ca") && err.contains("--insecure-internal"),
        "{err}"
    );
    let partial = vectron(
        &[
            "pd",
            "--node-id",
            "1",
            "--initial-members",
            "1=127.0.0.1:1",
            "--internal-ca",
            "/nonexistent/ca.pem",
        ],
        &[],
    );
    assert!(!partial.status.success());
    let err = stderr(&partial);
    assert!(err.contains("--internal-cert is missing"), "{err}");
}

#[test]
fn cert_makes_a_ca_and_certificates_naming_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().display().to_string();
    let ca = vectron(&["cert", "ca", "--dir", &pki], &[]);
    assert!(ca.status.success(), "{}", stderr(&ca));
    let again = vectron(&["cert", "ca", "--dir", &pki], &[]);
    assert!(!again.status.success(), "a second CA needs --force");
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let issue = vectron(
        &[
            "cert",
            "issue",
            "--dir",
            &pki,
            "--name",
            "w1",
            "--role",
            "worker,admin",
            "--host",
            "10.0.0.7",
        ],
        &[],
    );
    assert!(issue.status.success(), "{}", stderr(&issue));
    let files = vectron_tls::TlsFiles::in_dir(dir.path(), "w1");
    let identity = vectron_tls::Identity::load(files).expect("the issued files load");
    assert_eq!(
        identity.roles(),
        vectron_tls::RoleSet::of(&[vectron_tls::Role::Worker, vectron_tls::Role::Admin])
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["ca.key", "w1.key"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    let bad = vectron(
        &[
            "cert", "issue", "--dir", &pki, "--name", "x", "--role", "root",
        ],
        &[],
    );
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("root"), "{}", stderr(&bad));
}
