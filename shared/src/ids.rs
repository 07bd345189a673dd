//! The names by which browsers know Foresight's extension and native host.
//!
//! The Chrome extension id is derived from the public key in the manifest (`"key"`): the first
//! 32 hex digits of SHA-256 of the DER key, with digits 0-f mapped to letters a-p. A test in
//! `xtask` recomputes it from `extension/manifest.base.json`, so the two cannot drift.

/// The native-messaging host name (`chrome.runtime.connectNative(HOST_NAME)`).
pub const HOST_NAME: &str = "dev.foresight.host";

/// The extension id in Chrome and Chromium, fixed by the manifest's `"key"`.
pub const CHROME_EXTENSION_ID: &str = "dfffimdhjkiffldpkdcdngjbihdpjdkm";

/// The extension id in Firefox (`browser_specific_settings.gecko.id`).
pub const FIREFOX_EXTENSION_ID: &str = "foresight@foresight.dev";

/// The broker address the extension uses until the user configures another one, and the
/// address `foresight-broker` listens on when started without arguments.
pub const DEFAULT_BROKER_ADDR: &str = "127.0.0.1:47800";
