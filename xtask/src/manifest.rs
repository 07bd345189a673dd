//! Per-browser manifests from one base: `extension/manifest.base.json` holds everything
//! common, plus a `"chrome"` and a `"firefox"` section with what differs (background form,
//! the key that fixes Chrome's extension id, Gecko's id and data-collection declaration).
//! This is the only place that knows those differences exist in the manifest.

use serde_json::{Map, Value};

use crate::util::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    Chrome,
    Firefox,
}

impl Browser {
    pub const ALL: [Browser; 2] = [Browser::Chrome, Browser::Firefox];

    pub fn name(self) -> &'static str {
        match self {
            Browser::Chrome => "chrome",
            Browser::Firefox => "firefox",
        }
    }
}

/// The manifest for `browser`, with `version` stamped in.
pub fn for_browser(base: &Value, browser: Browser, version: &str) -> Result<Value> {
    let base = base
        .as_object()
        .ok_or("manifest.base.json is not a JSON object")?;
    let mut out = Map::new();
    for (k, v) in base {
        if k != "chrome" && k != "firefox" {
            out.insert(k.clone(), v.clone());
        }
    }
    let section = base
        .get(browser.name())
        .and_then(Value::as_object)
        .ok_or_else(|| format!("manifest.base.json has no {:?} section", browser.name()))?;
    for (k, v) in section {
        out.insert(k.clone(), v.clone());
    }
    out.insert("version".into(), Value::String(version.into()));
    Ok(Value::Object(out))
}

/// Chrome's extension id for a manifest `"key"`: the first 32 hex digits of SHA-256 of the
/// DER public key, each digit 0-f mapped to a letter a-p.
pub fn chrome_extension_id(key_base64: &str) -> Result<String> {
    use base64::Engine;
    use sha2::Digest;
    let der = base64::engine::general_purpose::STANDARD.decode(key_base64)?;
    let digest = sha2::Sha256::digest(&der);
    Ok(digest
        .iter()
        .take(16)
        .flat_map(|b| [b >> 4, b & 0xf])
        .map(|nibble| char::from(b'a' + nibble))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        let path = crate::util::paths::workspace_root().join("extension/manifest.base.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn chrome_id_matches_the_key_in_the_manifest() {
        let key = base()["chrome"]["key"].as_str().unwrap().to_string();
        assert_eq!(
            chrome_extension_id(&key).unwrap(),
            foresight_shared::ids::CHROME_EXTENSION_ID
        );
    }

    #[test]
    fn firefox_id_matches_the_shared_constant() {
        let m = for_browser(&base(), Browser::Firefox, "1.2.3").unwrap();
        assert_eq!(
            m["browser_specific_settings"]["gecko"]["id"],
            foresight_shared::ids::FIREFOX_EXTENSION_ID
        );
    }

    #[test]
    fn each_browser_gets_its_background_and_nothing_of_the_other() {
        let chrome = for_browser(&base(), Browser::Chrome, "1.2.3").unwrap();
        let firefox = for_browser(&base(), Browser::Firefox, "1.2.3").unwrap();
        assert_eq!(chrome["background"]["service_worker"], "background.js");
        assert!(chrome.get("browser_specific_settings").is_none());
        assert!(chrome.get("firefox").is_none() && chrome.get("chrome").is_none());
        assert_eq!(firefox["background"]["scripts"][0], "background.js");
        assert!(firefox.get("key").is_none());
        for m in [&chrome, &firefox] {
            assert_eq!(m["version"], "1.2.3");
            assert_eq!(m["manifest_version"], 3);
            // wasm needs 'wasm-unsafe-eval' in both browsers.
            assert!(
                m["content_security_policy"]["extension_pages"]
                    .as_str()
                    .unwrap()
                    .contains("'wasm-unsafe-eval'")
            );
        }
    }
}
