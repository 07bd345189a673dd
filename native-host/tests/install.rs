//! `foresight-host install` / `uninstall` through the real binary, into temporary homes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use foresight_shared::ids;
use serde_json::{Value, json};

const HOST_BIN: &str = env!("CARGO_BIN_EXE_foresight-host");

fn run(args: &[&str]) -> Output {
    let output = Command::new(HOST_BIN)
        .args(args)
        .output()
        .expect("run foresight-host");
    assert!(
        output.status.success(),
        "foresight-host {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read_manifest(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("manifest {} missing: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest is JSON")
}

fn manifest_name() -> String {
    format!("{}.json", ids::HOST_NAME)
}

fn chrome_manifest_path(home: &Path) -> PathBuf {
    home.join(".config/google-chrome/NativeMessagingHosts")
        .join(manifest_name())
}

fn chromium_manifest_path(home: &Path) -> PathBuf {
    home.join(".config/chromium/NativeMessagingHosts")
        .join(manifest_name())
}

fn firefox_manifest_path(home: &Path) -> PathBuf {
    home.join(".mozilla/native-messaging-hosts")
        .join(manifest_name())
}

fn assert_chrome_manifest(manifest: &Value, host_path: &str) {
    assert_eq!(manifest["name"], ids::HOST_NAME);
    assert_eq!(manifest["type"], "stdio");
    assert_eq!(manifest["path"], host_path);
    assert!(
        manifest["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(
        manifest["allowed_origins"],
        json!([format!("chrome-extension://{}/", ids::CHROME_EXTENSION_ID)])
    );
    assert!(manifest.get("allowed_extensions").is_none());
}

fn assert_firefox_manifest(manifest: &Value, host_path: &str) {
    assert_eq!(manifest["name"], ids::HOST_NAME);
    assert_eq!(manifest["type"], "stdio");
    assert_eq!(manifest["path"], host_path);
    assert_eq!(
        manifest["allowed_extensions"],
        json!([ids::FIREFOX_EXTENSION_ID])
    );
    assert!(manifest.get("allowed_origins").is_none());
}

#[cfg(target_os = "linux")]
#[test]
fn install_and_uninstall_each_browser_into_a_temporary_home() {
    type ManifestPath = fn(&Path) -> PathBuf;
    let cases: [(&str, ManifestPath, bool); 3] = [
        ("chrome", chrome_manifest_path, false),
        ("chromium", chromium_manifest_path, false),
        ("firefox", firefox_manifest_path, true),
    ];
    for (browser, manifest_path, is_firefox) in cases {
        let home = tempfile::tempdir().expect("tempdir");
        let home_arg = home.path().to_str().expect("utf-8 tempdir");
        let out = run(&[
            "install",
            "--browser",
            browser,
            "--home",
            home_arg,
            "--host-path",
            "/opt/foresight/foresight-host",
        ]);
        let path = manifest_path(home.path());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&path.display().to_string()),
            "{browser}: {stdout}"
        );
        let manifest = read_manifest(&path);
        if is_firefox {
            assert_firefox_manifest(&manifest, "/opt/foresight/foresight-host");
        } else {
            assert_chrome_manifest(&manifest, "/opt/foresight/foresight-host");
        }
        // Only the chosen browser's manifest is written.
        let written = [
            chrome_manifest_path(home.path()),
            chromium_manifest_path(home.path()),
            firefox_manifest_path(home.path()),
        ]
        .iter()
        .filter(|p| p.exists())
        .count();
        assert_eq!(written, 1, "{browser}");

        let out = run(&["uninstall", "--browser", browser, "--home", home_arg]);
        assert!(!path.exists(), "{browser}: manifest removed");
        assert!(String::from_utf8_lossy(&out.stdout).contains("removed"));
        // Uninstalling again is fine.
        let out = run(&["uninstall", "--browser", browser, "--home", home_arg]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to remove"));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn install_all_defaults_to_this_executable() {
    let home = tempfile::tempdir().expect("tempdir");
    let home_arg = home.path().to_str().expect("utf-8 tempdir");
    run(&["install", "--home", home_arg]);
    let exe = std::fs::canonicalize(HOST_BIN).expect("binary exists");
    let exe = exe.to_str().expect("utf-8 path");
    assert_chrome_manifest(&read_manifest(&chrome_manifest_path(home.path())), exe);
    assert_chrome_manifest(&read_manifest(&chromium_manifest_path(home.path())), exe);
    assert_firefox_manifest(&read_manifest(&firefox_manifest_path(home.path())), exe);
    run(&["uninstall", "--browser", "all", "--home", home_arg]);
    assert!(!chrome_manifest_path(home.path()).exists());
    assert!(!chromium_manifest_path(home.path()).exists());
    assert!(!firefox_manifest_path(home.path()).exists());
}

#[test]
fn a_custom_chrome_user_data_dir_gets_the_chromium_manifest() {
    let home = tempfile::tempdir().expect("tempdir");
    let profile = tempfile::tempdir().expect("tempdir");
    let home_arg = home.path().to_str().expect("utf-8 tempdir");
    let profile_arg = profile.path().to_str().expect("utf-8 tempdir");
    run(&[
        "install",
        "--browser",
        "chromium",
        "--home",
        home_arg,
        "--chrome-user-data-dir",
        profile_arg,
        "--host-path",
        "/usr/local/bin/foresight-host",
    ]);
    let path = profile
        .path()
        .join("NativeMessagingHosts")
        .join(manifest_name());
    assert_chrome_manifest(&read_manifest(&path), "/usr/local/bin/foresight-host");
    // The home's default folder is not touched.
    assert!(!home.path().join(".config").exists());

    run(&[
        "uninstall",
        "--browser",
        "chromium",
        "--home",
        home_arg,
        "--chrome-user-data-dir",
        profile_arg,
    ]);
    assert!(!path.exists());
}

#[test]
fn a_relative_host_path_is_made_absolute() {
    let home = tempfile::tempdir().expect("tempdir");
    let home_arg = home.path().to_str().expect("utf-8 tempdir");
    let output = Command::new(HOST_BIN)
        .current_dir(home.path())
        .args([
            "install",
            "--browser",
            "firefox",
            "--home",
            home_arg,
            "--host-path",
            "bin/foresight-host",
        ])
        .output()
        .expect("run");
    assert!(output.status.success());
    let manifest_dir = if cfg!(target_os = "macos") {
        home.path()
            .join("Library/Application Support/Mozilla/NativeMessagingHosts")
    } else {
        home.path().join(".mozilla/native-messaging-hosts")
    };
    let manifest = read_manifest(&manifest_dir.join(manifest_name()));
    let path = PathBuf::from(manifest["path"].as_str().expect("path is a string"));
    assert!(path.is_absolute(), "{}", path.display());
    assert!(path.ends_with("bin/foresight-host"));
}

#[test]
fn help_and_version_go_to_the_command_line_parser() {
    let out = run(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("foresight-host {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("install") && help.contains("uninstall"),
        "{help}"
    );
    let out = run(&["install", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--chrome-user-data-dir"), "{help}");
}

#[test]
fn a_bad_browser_name_is_a_usage_error() {
    let output = Command::new(HOST_BIN)
        .args(["install", "--browser", "netscape"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("netscape"));
}

#[cfg(target_os = "linux")]
#[test]
fn status_shows_contention_and_what_each_browser_finds() {
    let home = tempfile::tempdir().expect("tempdir");
    let home_arg = home.path().to_str().expect("utf-8 tempdir");
    let before = String::from_utf8_lossy(&run(&["status", "--home", home_arg]).stdout).into_owned();
    assert!(before.contains("idle millicores"), "{before}");
    assert_eq!(
        before.matches("will not find the host").count(),
        3,
        "{before}"
    );
    run(&["install", "--browser", "firefox", "--home", home_arg]);
    let after = String::from_utf8_lossy(&run(&["status", "--home", home_arg]).stdout).into_owned();
    assert!(after.contains("firefox: will find"), "{after}");
    assert!(after.contains("(this host)"), "{after}");
    assert_eq!(
        after.matches("will not find the host").count(),
        2,
        "{after}"
    );
}

#[test]
fn a_malformed_extension_id_is_a_clear_error() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(HOST_BIN)
        .args(["install", "--home"])
        .arg(home.path())
        .args(["--extension-id", "not an id"])
        .output()
        .expect("run foresight-host");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not an extension id"), "{stderr}");
    assert!(
        std::fs::read_dir(home.path())
            .expect("home")
            .next()
            .is_none(),
        "nothing written"
    );
}
