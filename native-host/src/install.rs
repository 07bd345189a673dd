//! Registering the host with browsers: writing and removing native-messaging host manifests.
//!
//! A browser finds a native host by name through a JSON manifest in a per-browser folder. The
//! manifest names the host, its absolute path and which extensions may start it
//! (`allowed_origins` in Chrome and Chromium, `allowed_extensions` in Firefox).
//!
//! Folders (`HOME` replaceable, so tests never touch the real one):
//!
//! | browser | Linux | macOS |
//! |---|---|---|
//! | Chrome | `~/.config/google-chrome/NativeMessagingHosts` | `~/Library/Application Support/Google/Chrome/NativeMessagingHosts` |
//! | Chromium | `~/.config/chromium/NativeMessagingHosts` | `~/Library/Application Support/Chromium/NativeMessagingHosts` |
//! | Firefox | `~/.mozilla/native-messaging-hosts` | `~/Library/Application Support/Mozilla/NativeMessagingHosts` |
//!
//! Chrome and Chromium started with `--user-data-dir=D` read `D/NativeMessagingHosts` instead
//! (and no longer the folder above), hence [`Targets::chrome_user_data_dir`]. Windows finds
//! hosts through the registry: the manifest goes to
//! `%LOCALAPPDATA%\Foresight\NativeMessagingHosts\<browser>` and a per-user key names it
//! ([`registry`]; compiled and tested everywhere, run only on Windows).
//!
//! The allow-lists are Foresight's published extension ids unless `--extension-id` names
//! others ([`AllowedCallers`]); the host checks its callers against what was written here
//! (`crate::caller`).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use foresight_shared::ids;
use serde_json::{Value, json};

/// A browser family with its own manifest location and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Browser {
    Chrome,
    Chromium,
    Firefox,
}

impl Browser {
    pub const ALL: [Browser; 3] = [Browser::Chrome, Browser::Chromium, Browser::Firefox];

    pub fn name(self) -> &'static str {
        match self {
            Browser::Chrome => "chrome",
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
        }
    }
}

impl fmt::Display for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The operating systems whose manifest folders are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Linux,
    MacOs,
    /// Manifests are files under `%LOCALAPPDATA%`, found through the registry.
    Windows,
}

impl Platform {
    /// The platform this binary runs on, if manifests are files there.
    pub fn current() -> Option<Platform> {
        if cfg!(target_os = "macos") {
            Some(Platform::MacOs)
        } else if cfg!(windows) {
            Some(Platform::Windows)
        } else if cfg!(unix) {
            // The BSDs follow the Linux layout.
            Some(Platform::Linux)
        } else {
            None
        }
    }
}

/// Which manifests to write or remove, and where.
#[derive(Debug, Clone)]
pub struct Targets {
    pub browsers: Vec<Browser>,
    /// Stands in for `$HOME`.
    pub home: PathBuf,
    /// A Chrome/Chromium `--user-data-dir`; its `NativeMessagingHosts` replaces the default
    /// folder for both.
    pub chrome_user_data_dir: Option<PathBuf>,
    pub platform: Platform,
}

impl Targets {
    /// The folder and browser of each manifest, without duplicates (Chrome and Chromium share
    /// one folder when a user data dir is given, and the same manifest serves both).
    pub fn manifest_paths(&self) -> Vec<(Browser, PathBuf)> {
        let mut out: Vec<(Browser, PathBuf)> = Vec::new();
        for &browser in &self.browsers {
            let path = manifest_dir(
                browser,
                &self.home,
                self.chrome_user_data_dir.as_deref(),
                self.platform,
            )
            .join(manifest_file_name());
            if !out.iter().any(|(_, p)| *p == path) {
                out.push((browser, path));
            }
        }
        out
    }
}

/// `<HOST_NAME>.json`.
pub fn manifest_file_name() -> String {
    format!("{}.json", ids::HOST_NAME)
}

/// The folder in which `browser` looks for host manifests.
pub fn manifest_dir(
    browser: Browser,
    home: &Path,
    chrome_user_data_dir: Option<&Path>,
    platform: Platform,
) -> PathBuf {
    match (browser, chrome_user_data_dir, platform) {
        (Browser::Chrome | Browser::Chromium, Some(dir), _) => dir.join("NativeMessagingHosts"),
        (Browser::Chrome, None, Platform::Linux) => {
            home.join(".config/google-chrome/NativeMessagingHosts")
        }
        (Browser::Chromium, None, Platform::Linux) => {
            home.join(".config/chromium/NativeMessagingHosts")
        }
        (Browser::Firefox, _, Platform::Linux) => home.join(".mozilla/native-messaging-hosts"),
        (Browser::Chrome, None, Platform::MacOs) => {
            home.join("Library/Application Support/Google/Chrome/NativeMessagingHosts")
        }
        (Browser::Chromium, None, Platform::MacOs) => {
            home.join("Library/Application Support/Chromium/NativeMessagingHosts")
        }
        (Browser::Firefox, _, Platform::MacOs) => {
            home.join("Library/Application Support/Mozilla/NativeMessagingHosts")
        }
        // Windows reads the manifest wherever the registry says; one folder per browser
        // under the user's local application data keeps them apart.
        (_, _, Platform::Windows) => home
            .join("AppData/Local/Foresight/NativeMessagingHosts")
            .join(browser.name()),
    }
}

/// The Windows registry side of installing: each browser finds a host through a key under
/// `HKEY_CURRENT_USER` whose default value is the manifest's path. The key names and the
/// `reg.exe` command lines are built on every platform (and tested here); only running them
/// is Windows-only.
pub mod registry {
    use std::path::Path;

    use foresight_shared::ids;

    use super::{Browser, InstallError};

    /// The per-user key `browser` reads.
    pub fn key(browser: Browser) -> String {
        let vendor = match browser {
            Browser::Chrome => "Google\\Chrome",
            Browser::Chromium => "Chromium",
            Browser::Firefox => "Mozilla",
        };
        format!(
            "HKCU\\Software\\{vendor}\\NativeMessagingHosts\\{}",
            ids::HOST_NAME
        )
    }

    /// `reg.exe` arguments setting the key's default value to `manifest`.
    pub fn add_args(browser: Browser, manifest: &Path) -> Vec<String> {
        vec![
            "add".into(),
            key(browser),
            "/ve".into(),
            "/t".into(),
            "REG_SZ".into(),
            "/d".into(),
            manifest.display().to_string(),
            "/f".into(),
        ]
    }

    /// `reg.exe` arguments removing the key.
    pub fn delete_args(browser: Browser) -> Vec<String> {
        vec!["delete".into(), key(browser), "/f".into()]
    }

    pub fn register(browser: Browser, manifest: &Path) -> Result<(), InstallError> {
        run(browser, add_args(browser, manifest))
    }

    pub fn unregister(browser: Browser) -> Result<(), InstallError> {
        // A key that is already gone is what uninstall wants.
        match run(browser, delete_args(browser)) {
            Err(InstallError::Registry { why, .. }) if why.contains("unable to find") => Ok(()),
            other => other,
        }
    }

    #[cfg(windows)]
    fn run(browser: Browser, args: Vec<String>) -> Result<(), InstallError> {
        let out = std::process::Command::new("reg")
            .args(&args)
            .output()
            .map_err(|e| InstallError::Registry {
                key: key(browser),
                why: e.to_string(),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(InstallError::Registry {
                key: key(browser),
                why: String::from_utf8_lossy(&out.stderr).to_lowercase(),
            })
        }
    }

    #[cfg(not(windows))]
    fn run(browser: Browser, _args: Vec<String>) -> Result<(), InstallError> {
        Err(InstallError::Registry {
            key: key(browser),
            why: "there is no registry on this operating system".into(),
        })
    }
}

/// Which extensions a manifest lets start the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedCallers {
    /// Chrome/Chromium extension ids (32 letters a-p).
    pub chrome_ids: Vec<String>,
    /// Firefox add-on ids (`name@domain` or `{uuid}`).
    pub firefox_ids: Vec<String>,
}

impl Default for AllowedCallers {
    /// Foresight's own extension, as published.
    fn default() -> Self {
        Self {
            chrome_ids: vec![ids::CHROME_EXTENSION_ID.to_string()],
            firefox_ids: vec![ids::FIREFOX_EXTENSION_ID.to_string()],
        }
    }
}

impl AllowedCallers {
    /// From `--extension-id` values: each is a Chrome id or a Firefox id by its form, and
    /// replaces the default for that browser family only.
    pub fn from_ids(given: &[String]) -> Result<Self, InstallError> {
        let mut allowed = Self::default();
        let (mut chrome, mut firefox) = (Vec::new(), Vec::new());
        for id in given {
            if is_chrome_id(id) {
                chrome.push(id.clone());
            } else if is_firefox_id(id) {
                firefox.push(id.clone());
            } else {
                return Err(InstallError::BadExtensionId(id.clone()));
            }
        }
        if !chrome.is_empty() {
            allowed.chrome_ids = chrome;
        }
        if !firefox.is_empty() {
            allowed.firefox_ids = firefox;
        }
        Ok(allowed)
    }
}

/// 32 letters `a`-`p`: how Chrome spells an extension id.
pub fn is_chrome_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| (b'a'..=b'p').contains(&b))
}

/// `name@domain` or `{uuid}`: the two forms of a Firefox add-on id.
pub fn is_firefox_id(id: &str) -> bool {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    };
    match id.split_once('@') {
        Some((name, domain)) => plain(name) && plain(domain),
        None => {
            id.len() == 38
                && id.starts_with('{')
                && id.ends_with('}')
                && id[1..37]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'-')
        }
    }
}

/// The manifest `browser` needs to start the host at `host_path` for the allowed extensions.
pub fn manifest(browser: Browser, host_path: &Path, allowed: &AllowedCallers) -> Value {
    let mut manifest = json!({
        "name": ids::HOST_NAME,
        "description": "Foresight: contention sensing and the Predictive Execution Planner",
        "path": host_path.to_string_lossy(),
        "type": "stdio",
    });
    match browser {
        Browser::Chrome | Browser::Chromium => {
            let origins: Vec<String> = allowed
                .chrome_ids
                .iter()
                .map(|id| format!("chrome-extension://{id}/"))
                .collect();
            manifest["allowed_origins"] = json!(origins);
        }
        Browser::Firefox => {
            manifest["allowed_extensions"] = json!(allowed.firefox_ids);
        }
    }
    manifest
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot find this executable: {0}")]
    CurrentExe(io::Error),
    #[error("host path {path} is not valid UTF-8, which browsers cannot read from a manifest")]
    NonUtf8Path { path: PathBuf },
    #[error("cannot make {path} absolute: {source}")]
    Absolute { path: PathBuf, source: io::Error },
    #[error("no home folder: set HOME or pass --home")]
    NoHome,
    #[error("this operating system registers native hosts in a way not supported here")]
    UnsupportedPlatform,
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error(
        "{0:?} is not an extension id: Chrome ids are 32 letters a-p, Firefox ids look like name@domain or {{uuid}}"
    )]
    BadExtensionId(String),
    #[error("cannot register {key} in the Windows registry: {why}")]
    Registry { key: String, why: String },
}

/// The home folder to use: `--home` if given, else `$HOME`.
pub fn resolve_home(home: Option<PathBuf>) -> Result<PathBuf, InstallError> {
    home.or_else(|| {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    })
    .ok_or(InstallError::NoHome)
}

/// The absolute host path for the manifest: `host_path` made absolute (kept as given
/// otherwise, so a stable symlink stays a symlink), or this executable, canonicalized.
pub fn resolve_host_path(host_path: Option<PathBuf>) -> Result<PathBuf, InstallError> {
    let path = match host_path {
        Some(path) => std::path::absolute(&path).map_err(|source| InstallError::Absolute {
            path: path.clone(),
            source,
        })?,
        None => std::env::current_exe()
            .and_then(fs::canonicalize)
            .map_err(InstallError::CurrentExe)?,
    };
    if path.to_str().is_none() {
        return Err(InstallError::NonUtf8Path { path });
    }
    Ok(path)
}

/// What one install or uninstall step did, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Wrote { browser: Browser, path: PathBuf },
    Removed { browser: Browser, path: PathBuf },
    WasAbsent { browser: Browser, path: PathBuf },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Wrote { browser, path } => {
                write!(f, "wrote {browser} host manifest {}", path.display())
            }
            Action::Removed { browser, path } => {
                write!(f, "removed {browser} host manifest {}", path.display())
            }
            Action::WasAbsent { browser, path } => {
                write!(
                    f,
                    "no {browser} host manifest at {} (nothing to remove)",
                    path.display()
                )
            }
        }
    }
}

/// Writes a manifest for each target, creating folders as needed. Stops at the first failure;
/// the actions before it have been done.
pub fn install(
    targets: &Targets,
    host_path: &Path,
    allowed: &AllowedCallers,
) -> Result<Vec<Action>, InstallError> {
    let mut actions = Vec::new();
    for (browser, path) in targets.manifest_paths() {
        let mut text = serde_json::to_string_pretty(&manifest(browser, host_path, allowed))
            .unwrap_or_default()
            .into_bytes();
        text.push(b'\n');
        write_atomically(&path, &text).map_err(|source| InstallError::Write {
            path: path.clone(),
            source,
        })?;
        if targets.platform == Platform::Windows {
            registry::register(browser, &path)?;
        }
        actions.push(Action::Wrote { browser, path });
    }
    Ok(actions)
}

/// Removes each target's manifest; a missing one is not an error. Folders are left alone, as
/// the browser owns them.
pub fn uninstall(targets: &Targets) -> Result<Vec<Action>, InstallError> {
    let mut actions = Vec::new();
    for (browser, path) in targets.manifest_paths() {
        if targets.platform == Platform::Windows {
            registry::unregister(browser)?;
        }
        match fs::remove_file(&path) {
            Ok(()) => actions.push(Action::Removed { browser, path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                actions.push(Action::WasAbsent { browser, path })
            }
            Err(source) => return Err(InstallError::Remove { path, source }),
        }
    }
    Ok(actions)
}

/// A browser starting at the wrong moment must see the old manifest or the new one, never half
/// of one: write beside it, then rename over it.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("a manifest path has a folder"))?;
    fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(contents)?;
        f.sync_all()
    });
    match written.and_then(|()| fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(home: &Path, browsers: &[Browser], user_data: Option<&Path>) -> Targets {
        Targets {
            browsers: browsers.to_vec(),
            home: home.to_path_buf(),
            chrome_user_data_dir: user_data.map(Path::to_path_buf),
            platform: Platform::Linux,
        }
    }

    #[test]
    fn linux_and_macos_folders() {
        let home = Path::new("/h");
        let linux = |b| manifest_dir(b, home, None, Platform::Linux);
        assert_eq!(
            linux(Browser::Chrome),
            Path::new("/h/.config/google-chrome/NativeMessagingHosts")
        );
        assert_eq!(
            linux(Browser::Chromium),
            Path::new("/h/.config/chromium/NativeMessagingHosts")
        );
        assert_eq!(
            linux(Browser::Firefox),
            Path::new("/h/.mozilla/native-messaging-hosts")
        );
        let mac = |b| manifest_dir(b, home, None, Platform::MacOs);
        assert_eq!(
            mac(Browser::Firefox),
            Path::new("/h/Library/Application Support/Mozilla/NativeMessagingHosts")
        );
        let custom = Path::new("/profile");
        for b in [Browser::Chrome, Browser::Chromium] {
            assert_eq!(
                manifest_dir(b, home, Some(custom), Platform::MacOs),
                Path::new("/profile/NativeMessagingHosts")
            );
        }
        assert_eq!(
            manifest_dir(Browser::Firefox, home, Some(custom), Platform::Linux),
            Path::new("/h/.mozilla/native-messaging-hosts")
        );
    }

    #[test]
    fn chrome_and_chromium_share_a_custom_user_data_dir_once() {
        let t = targets(Path::new("/h"), &Browser::ALL, Some(Path::new("/p")));
        let paths = t.manifest_paths();
        assert_eq!(paths.len(), 2);
        assert_eq!(
            paths[0].1,
            Path::new("/p/NativeMessagingHosts/dev.foresight.host.json")
        );
        assert_eq!(paths[1].0, Browser::Firefox);
    }

    #[test]
    fn manifests_have_the_browser_specific_allow_list() {
        let chrome = manifest(
            Browser::Chrome,
            Path::new("/opt/foresight-host"),
            &AllowedCallers::default(),
        );
        assert_eq!(chrome["name"], ids::HOST_NAME);
        assert_eq!(chrome["type"], "stdio");
        assert_eq!(chrome["path"], "/opt/foresight-host");
        assert_eq!(
            chrome["allowed_origins"],
            json!([format!("chrome-extension://{}/", ids::CHROME_EXTENSION_ID)])
        );
        assert!(chrome.get("allowed_extensions").is_none());
        let firefox = manifest(
            Browser::Firefox,
            Path::new("/opt/foresight-host"),
            &AllowedCallers::default(),
        );
        assert_eq!(
            firefox["allowed_extensions"],
            json!([ids::FIREFOX_EXTENSION_ID])
        );
        assert!(firefox.get("allowed_origins").is_none());
    }

    #[test]
    fn install_then_uninstall_is_idempotent() {
        let home = tempfile::tempdir().expect("tempdir");
        let t = targets(home.path(), &Browser::ALL, None);
        let host = Path::new("/opt/foresight-host");
        let allowed = AllowedCallers::default();
        let wrote = install(&t, host, &allowed).expect("install");
        assert_eq!(wrote.len(), 3);
        // Installing again replaces the manifests in place.
        install(&t, host, &allowed).expect("reinstall");
        for (_, path) in t.manifest_paths() {
            let text = fs::read_to_string(&path).expect("manifest exists");
            let value: Value = serde_json::from_str(&text).expect("manifest is JSON");
            assert_eq!(value["path"], "/opt/foresight-host");
            // No temporary files are left beside it.
            let siblings = fs::read_dir(path.parent().unwrap()).unwrap().count();
            assert_eq!(siblings, 1);
        }
        let removed = uninstall(&t).expect("uninstall");
        assert!(removed.iter().all(|a| matches!(a, Action::Removed { .. })));
        let again = uninstall(&t).expect("uninstall twice");
        assert!(again.iter().all(|a| matches!(a, Action::WasAbsent { .. })));
    }

    #[test]
    fn extension_ids_replace_the_default_per_browser_family() {
        let chrome_id = "abcdefghijklmnopabcdefghijklmnop".to_string();
        let a = AllowedCallers::from_ids(std::slice::from_ref(&chrome_id)).expect("valid");
        assert_eq!(a.chrome_ids, vec![chrome_id.clone()]);
        assert_eq!(a.firefox_ids, AllowedCallers::default().firefox_ids);
        let both = AllowedCallers::from_ids(&[
            chrome_id.clone(),
            "me@example.org".into(),
            "{12345678-1234-1234-1234-123456789abc}".into(),
        ])
        .expect("valid");
        assert_eq!(both.firefox_ids.len(), 2);
        let m = manifest(Browser::Chromium, Path::new("/h"), &both);
        assert_eq!(
            m["allowed_origins"],
            json!([format!("chrome-extension://{chrome_id}/")])
        );
        for bad in [
            "",
            "ABCDEFGHIJKLMNOPABCDEFGHIJKLMNOP",
            "no spaces@x y",
            "{not-a-uuid}",
        ] {
            assert!(
                matches!(
                    AllowedCallers::from_ids(&[bad.to_string()]),
                    Err(InstallError::BadExtensionId(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn windows_manifests_and_registry_keys() {
        let home = Path::new("C:/Users/u");
        assert_eq!(
            manifest_dir(Browser::Chrome, home, None, Platform::Windows),
            Path::new("C:/Users/u/AppData/Local/Foresight/NativeMessagingHosts/chrome")
        );
        assert_eq!(
            registry::key(Browser::Chrome),
            "HKCU\\Software\\Google\\Chrome\\NativeMessagingHosts\\dev.foresight.host"
        );
        assert_eq!(
            registry::key(Browser::Firefox),
            "HKCU\\Software\\Mozilla\\NativeMessagingHosts\\dev.foresight.host"
        );
        let args = registry::add_args(Browser::Chromium, Path::new("C:/m.json"));
        assert_eq!(args[0], "add");
        assert_eq!(args[1], registry::key(Browser::Chromium));
        assert!(args.windows(2).any(|w| w[0] == "/d" && w[1] == "C:/m.json"));
        assert_eq!(registry::delete_args(Browser::Chrome)[0], "delete");
        if !cfg!(windows) {
            assert!(registry::register(Browser::Chrome, Path::new("x")).is_err());
        }
    }

    #[test]
    fn host_path_is_made_absolute() {
        let p = resolve_host_path(Some(PathBuf::from("bin/foresight-host"))).expect("absolute");
        assert!(p.is_absolute());
        assert!(p.ends_with("bin/foresight-host"));
        let exe = resolve_host_path(None).expect("current exe");
        assert!(exe.is_absolute());
    }
}
