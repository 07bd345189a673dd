//! The `foresight-host` binary: serve a browser, or (un)register with browsers.
//!
//! Browsers start the host with arguments of their own (Chrome: the caller's origin,
//! `chrome-extension://ID/`, plus `--parent-window=N` on Windows; Firefox: the manifest path
//! and the extension id), which a command-line parser would reject. So only a first argument
//! that is one of our own commands or flags goes to clap; anything else means serve mode, in
//! which the caller is checked first (`foresight_host::caller`).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use foresight_host::caller::{self, Caller};
use foresight_host::install::{self, AllowedCallers, Browser, Platform, Targets};
use foresight_host::serve::{self, ServeEnd};
use foresight_shared::framing::write_message;
use foresight_shared::limits::HOST_TO_BROWSER_MAX_FRAME;
use foresight_shared::protocol::ErrorCode;
use foresight_shared::protocol::host::HostReply;

/// Foresight's native messaging host. Browsers start it with their own arguments and talk to
/// it on stdin/stdout; run it yourself only to install or uninstall its manifests.
#[derive(Parser)]
#[command(name = "foresight-host", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the native-messaging host manifest where the browsers look for it.
    Install {
        #[command(flatten)]
        targets: TargetArgs,
        /// The host executable the manifest points at [default: this executable].
        #[arg(long, value_name = "PATH")]
        host_path: Option<PathBuf>,
        /// Allow this extension instead of Foresight's published one (repeatable). A Chrome
        /// id (32 letters a-p) replaces the Chrome/Chromium default, a Firefox id
        /// (name@domain or {uuid}) the Firefox one.
        #[arg(long = "extension-id", value_name = "ID")]
        extension_ids: Vec<String>,
    },
    /// Remove the manifests `install` wrote (missing ones are fine).
    Uninstall {
        #[command(flatten)]
        targets: TargetArgs,
    },
    /// Show the machine's contention and which browsers will find this host.
    Status {
        #[command(flatten)]
        targets: TargetArgs,
    },
}

#[derive(Args)]
struct TargetArgs {
    /// Which browser's manifest.
    #[arg(long, value_enum, default_value_t = BrowserArg::All)]
    browser: BrowserArg,
    /// Use this folder instead of $HOME.
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// The --user-data-dir Chrome/Chromium run with; their manifest goes to
    /// DIR/NativeMessagingHosts.
    #[arg(long, value_name = "DIR")]
    chrome_user_data_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum BrowserArg {
    Chrome,
    Chromium,
    Firefox,
    All,
}

impl TargetArgs {
    fn resolve(self) -> Result<Targets, install::InstallError> {
        let browsers = match self.browser {
            BrowserArg::Chrome => vec![Browser::Chrome],
            BrowserArg::Chromium => vec![Browser::Chromium],
            BrowserArg::Firefox => vec![Browser::Firefox],
            BrowserArg::All => Browser::ALL.to_vec(),
        };
        Ok(Targets {
            browsers,
            home: install::resolve_home(self.home)?,
            chrome_user_data_dir: self.chrome_user_data_dir,
            platform: Platform::current().ok_or(install::InstallError::UnsupportedPlatform)?,
        })
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let is_command = args.get(1).and_then(|a| a.to_str()).is_some_and(|a| {
        matches!(
            a,
            "install" | "uninstall" | "status" | "help" | "--help" | "-h" | "--version" | "-V"
        )
    });
    if is_command {
        command(args)
    } else {
        serve(&args[1.min(args.len())..])
    }
}

fn serve(browser_args: &[OsString]) -> ExitCode {
    let who = Caller::from_args(browser_args);
    if let Err(e) = caller::verify(&who, &caller::Context::from_env()) {
        // One frame saying why, so the extension can show it, then nothing more.
        eprintln!("foresight-host: refusing the caller: {e}");
        let refusal = HostReply::Error {
            request_id: None,
            code: ErrorCode::Forbidden,
            message: e.to_string(),
        };
        let _ = write_message(
            &mut std::io::stdout().lock(),
            &refusal,
            HOST_TO_BROWSER_MAX_FRAME,
        );
        return ExitCode::FAILURE;
    }
    if std::io::stdin().is_terminal() {
        // A person, not a browser: say what this is instead of silently waiting for frames.
        eprintln!(
            "foresight-host: waiting for native-messaging frames on stdin (browsers start this \
             program themselves; see `foresight-host --help` to install it)"
        );
    }
    match serve::serve_stdio() {
        Ok(ServeEnd::Disconnected) => ExitCode::SUCCESS,
        Ok(ServeEnd::Truncated(why)) => {
            // The browser went away mid-message; nobody is left to answer.
            eprintln!("foresight-host: input ended inside a frame ({why}); exiting");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("foresight-host: {e}");
            ExitCode::FAILURE
        }
    }
}

fn command(args: Vec<OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Install {
            targets,
            host_path,
            extension_ids,
        } => targets.resolve().and_then(|targets| {
            let allowed = AllowedCallers::from_ids(&extension_ids)?;
            let host_path = install::resolve_host_path(host_path)?;
            install::install(&targets, &host_path, &allowed)
        }),
        Command::Uninstall { targets } => targets
            .resolve()
            .and_then(|targets| install::uninstall(&targets)),
        Command::Status { targets } => {
            return match targets.resolve() {
                Ok(targets) => {
                    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
                    print!(
                        "{}",
                        foresight_host::status::report(&targets, me.as_deref())
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("foresight-host: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match result {
        Ok(actions) => {
            for action in actions {
                println!("{action}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("foresight-host: {e}");
            ExitCode::FAILURE
        }
    }
}
