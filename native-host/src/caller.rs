//! Who started this host, and whether `install` allowed them.
//!
//! A browser starts a native host with arguments of its own: Chrome and Chromium pass the
//! caller's origin (`chrome-extension://ID/`, then `--parent-window=N` on Windows); Firefox
//! passes the path of the manifest it used and the calling extension's id. The browser has
//! already checked its manifest's allow-list; the host checks again against what `install`
//! wrote for *this* executable, so a manifest pointing elsewhere, edited by hand, or another
//! extension that found its way to this binary is refused before any request is served.
//!
//! * Firefox names its manifest: it must be a manifest for this host, point at this
//!   executable, and list the extension id.
//! * Chrome does not say which manifest it read, so the host looks where Chrome and Chromium
//!   look: the per-user folders, and the `--user-data-dir` of the browser process that started
//!   it (Linux: its parent's command line). The origin must be allowed by one of the manifests
//!   there that point at this executable; if none can be found (an unusual launcher), only the
//!   built-in Foresight extension is allowed, as a default `install` would.
//! * No arguments: a person or a test started the host by hand, and is trusted as such.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use foresight_shared::ids;
use serde_json::Value;

use crate::install::{self, Browser, Platform};

/// The caller, as the browser's arguments describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No browser arguments.
    Direct,
    Chrome {
        origin: String,
    },
    Firefox {
        manifest: PathBuf,
        extension_id: String,
    },
    /// Arguments no supported browser passes.
    Unrecognised(Vec<String>),
}

impl Caller {
    /// From the process arguments, program name excluded.
    pub fn from_args(args: &[OsString]) -> Caller {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        match args.as_slice() {
            [] => Caller::Direct,
            [origin, rest @ ..]
                if origin.starts_with("chrome-extension://")
                    && rest.iter().all(|r| r.starts_with("--parent-window=")) =>
            {
                Caller::Chrome {
                    origin: origin.clone(),
                }
            }
            [manifest, id] if manifest.ends_with(".json") => Caller::Firefox {
                manifest: PathBuf::from(manifest),
                extension_id: id.clone(),
            },
            _ => Caller::Unrecognised(args),
        }
    }
}

/// Why a caller is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    #[error("extension origin {origin} is not allowed by the installed manifests ({allowed})")]
    OriginNotAllowed { origin: String, allowed: String },
    #[error("extension {id} is not in {manifest}'s allowed_extensions")]
    ExtensionNotAllowed { id: String, manifest: String },
    #[error("the manifest {manifest} is not usable: {why}")]
    BadManifest { manifest: String, why: String },
    #[error("the host was started with arguments no supported browser passes: {0:?}")]
    Unrecognised(Vec<String>),
}

/// Where to look, and what this executable is; gathered from the environment by
/// [`Context::from_env`], built by hand in tests.
#[derive(Debug, Clone)]
pub struct Context {
    pub home: Option<PathBuf>,
    /// A `--user-data-dir` the starting browser runs with.
    pub chrome_user_data_dir: Option<PathBuf>,
    pub platform: Option<Platform>,
    /// This executable, canonical.
    pub exe: Option<PathBuf>,
}

impl Context {
    pub fn from_env() -> Self {
        Self {
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            chrome_user_data_dir: parent_user_data_dir(),
            platform: Platform::current(),
            exe: std::env::current_exe().and_then(std::fs::canonicalize).ok(),
        }
    }
}

/// Checks `caller` against the manifests `install` wrote.
pub fn verify(caller: &Caller, ctx: &Context) -> Result<(), CallerError> {
    match caller {
        Caller::Direct => Ok(()),
        Caller::Unrecognised(args) => Err(CallerError::Unrecognised(args.clone())),
        Caller::Firefox {
            manifest,
            extension_id,
        } => {
            let shown = manifest.display().to_string();
            let value =
                read_own_manifest(manifest, ctx).map_err(|why| CallerError::BadManifest {
                    manifest: shown.clone(),
                    why,
                })?;
            if listed(&value, "allowed_extensions", extension_id) {
                Ok(())
            } else {
                Err(CallerError::ExtensionNotAllowed {
                    id: extension_id.clone(),
                    manifest: shown,
                })
            }
        }
        Caller::Chrome { origin } => {
            let manifests: Vec<Value> = chrome_manifest_paths(ctx)
                .iter()
                .filter_map(|p| read_own_manifest(p, ctx).ok())
                .collect();
            let allowed: Vec<String> = if manifests.is_empty() {
                vec![format!("chrome-extension://{}/", ids::CHROME_EXTENSION_ID)]
            } else {
                manifests
                    .iter()
                    .filter_map(|m| m["allowed_origins"].as_array())
                    .flatten()
                    .filter_map(|o| o.as_str().map(str::to_string))
                    .collect()
            };
            if allowed.iter().any(|a| a == origin) {
                Ok(())
            } else {
                Err(CallerError::OriginNotAllowed {
                    origin: origin.clone(),
                    allowed: allowed.join(", "),
                })
            }
        }
    }
}

/// The manifest at `path`, if it is this host's and points at this executable.
fn read_own_manifest(path: &Path, ctx: &Context) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    if value["name"] != ids::HOST_NAME {
        return Err(format!(
            "it names {}, not {}",
            value["name"],
            ids::HOST_NAME
        ));
    }
    let points_at = value["path"]
        .as_str()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p)));
    match (&ctx.exe, points_at) {
        (Some(exe), Some(p)) if *exe == p => Ok(value),
        (None, Some(_)) => Ok(value), // this executable cannot be located: trust the name
        (_, p) => Err(format!(
            "it points at {}, not at this host",
            p.map_or("nothing".into(), |p| p.display().to_string())
        )),
    }
}

fn listed(manifest: &Value, key: &str, wanted: &str) -> bool {
    manifest[key]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(wanted)))
}

/// Where Chrome and Chromium may have found this host's manifest.
fn chrome_manifest_paths(ctx: &Context) -> Vec<PathBuf> {
    let Some(platform) = ctx.platform else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let file = install::manifest_file_name();
    if let Some(dir) = &ctx.chrome_user_data_dir {
        out.push(
            install::manifest_dir(Browser::Chrome, Path::new(""), Some(dir), platform).join(&file),
        );
    }
    if let Some(home) = &ctx.home {
        for browser in [Browser::Chrome, Browser::Chromium] {
            out.push(install::manifest_dir(browser, home, None, platform).join(&file));
        }
    }
    out
}

/// The `--user-data-dir` of the process that started this one (Linux), which is where a
/// Chrome with a custom profile folder reads host manifests.
fn parent_user_data_dir() -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        let ppid = std::os::unix::process::parent_id();
        let cmdline = std::fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
        user_data_dir_in(&cmdline)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// `--user-data-dir=D` (or `--user-data-dir D`) in a NUL-separated command line.
pub fn user_data_dir_in(cmdline: &[u8]) -> Option<PathBuf> {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    for (i, arg) in args.iter().enumerate() {
        if let Some(dir) = arg.strip_prefix(b"--user-data-dir=") {
            return Some(PathBuf::from(String::from_utf8_lossy(dir).into_owned()));
        }
        if *arg == b"--user-data-dir" {
            return args
                .get(i + 1)
                .map(|d| PathBuf::from(String::from_utf8_lossy(d).into_owned()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::{AllowedCallers, Targets};

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn browser_arguments_are_recognised() {
        assert_eq!(Caller::from_args(&[]), Caller::Direct);
        assert_eq!(
            Caller::from_args(&args(&["chrome-extension://abc/", "--parent-window=7"])),
            Caller::Chrome {
                origin: "chrome-extension://abc/".into()
            }
        );
        assert_eq!(
            Caller::from_args(&args(&["/h/.mozilla/native-messaging-hosts/x.json", "a@b"])),
            Caller::Firefox {
                manifest: "/h/.mozilla/native-messaging-hosts/x.json".into(),
                extension_id: "a@b".into()
            }
        );
        assert!(matches!(
            Caller::from_args(&args(&["--serve"])),
            Caller::Unrecognised(_)
        ));
    }

    #[test]
    fn user_data_dir_is_found_in_a_command_line() {
        assert_eq!(
            user_data_dir_in(b"/usr/lib/chromium/chromium\0--headless\0--user-data-dir=/tmp/p\0"),
            Some(PathBuf::from("/tmp/p"))
        );
        assert_eq!(
            user_data_dir_in(b"chrome\0--user-data-dir\0/x\0"),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(user_data_dir_in(b"bash\0-c\0"), None);
    }

    /// A home with manifests installed for `exe`, allowing `allowed`.
    fn installed(exe: &Path, allowed: &AllowedCallers) -> (tempfile::TempDir, Context) {
        let home = tempfile::tempdir().expect("tempdir");
        let targets = Targets {
            browsers: Browser::ALL.to_vec(),
            home: home.path().to_path_buf(),
            chrome_user_data_dir: None,
            platform: Platform::Linux,
        };
        install::install(&targets, exe, allowed).expect("install");
        let ctx = Context {
            home: Some(home.path().to_path_buf()),
            chrome_user_data_dir: None,
            platform: Some(Platform::Linux),
            exe: Some(exe.to_path_buf()),
        };
        (home, ctx)
    }

    #[test]
    fn chrome_origins_are_checked_against_the_installed_manifests() {
        let exe = Path::new("/opt/foresight-host");
        let custom = AllowedCallers::from_ids(&["abcdefghijklmnopabcdefghijklmnop".into()])
            .expect("a chrome id");
        let (_home, ctx) = installed(exe, &custom);
        let ok = Caller::Chrome {
            origin: "chrome-extension://abcdefghijklmnopabcdefghijklmnop/".into(),
        };
        assert_eq!(verify(&ok, &ctx), Ok(()));
        // The default extension was not installed here, so it is refused.
        let default = Caller::Chrome {
            origin: format!("chrome-extension://{}/", ids::CHROME_EXTENSION_ID),
        };
        assert!(matches!(
            verify(&default, &ctx),
            Err(CallerError::OriginNotAllowed { .. })
        ));
        // Manifests for another executable do not count; then only the default is allowed.
        let other = Context {
            exe: Some(PathBuf::from("/elsewhere/foresight-host")),
            ..ctx
        };
        assert!(verify(&ok, &other).is_err());
        assert_eq!(verify(&default, &other), Ok(()));
    }

    #[test]
    fn firefox_ids_are_checked_against_the_manifest_it_names() {
        let exe = Path::new("/opt/foresight-host");
        let (home, ctx) = installed(exe, &AllowedCallers::default());
        let manifest = install::manifest_dir(Browser::Firefox, home.path(), None, Platform::Linux)
            .join(install::manifest_file_name());
        let ok = Caller::Firefox {
            manifest: manifest.clone(),
            extension_id: ids::FIREFOX_EXTENSION_ID.into(),
        };
        assert_eq!(verify(&ok, &ctx), Ok(()));
        let stranger = Caller::Firefox {
            manifest: manifest.clone(),
            extension_id: "evil@example.com".into(),
        };
        assert!(matches!(
            verify(&stranger, &ctx),
            Err(CallerError::ExtensionNotAllowed { .. })
        ));
        let missing = Caller::Firefox {
            manifest: home.path().join("nope.json"),
            extension_id: ids::FIREFOX_EXTENSION_ID.into(),
        };
        assert!(matches!(
            verify(&missing, &ctx),
            Err(CallerError::BadManifest { .. })
        ));
        let not_ours = Context {
            exe: Some(PathBuf::from("/elsewhere/foresight-host")),
            ..ctx
        };
        assert!(matches!(
            verify(&ok, &not_ours),
            Err(CallerError::BadManifest { .. })
        ));
    }
}
