//! Module workers' imports: specifiers resolve as URLs against the importing module, and
//! the loader serves only the modules the client supplied with the spawn (`Script::imports`),
//! from memory. There is no file or network loader in the executor.

use std::rc::Rc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Module};

use super::quickjs::State;

/// Resolves module specifiers as URLs against the importing module's URL.
pub(crate) struct UrlResolver;

impl Resolver for UrlResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        resolve_url(base, name).ok_or_else(|| {
            rquickjs::Error::new_resolving_message(
                base,
                name,
                "a module specifier must be a URL or start with /, ./ or ../",
            )
        })
    }
}

/// Serves the modules the client supplied with the spawn, and nothing else.
pub(crate) struct SuppliedModules(pub(crate) Rc<State>);

impl Loader for SuppliedModules {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        let source = self
            .0
            .script
            .borrow()
            .imports
            .iter()
            .find(|i| i.url == name)
            .map(|i| i.source.clone());
        match source {
            Some(source) => declare_module(ctx, name, source),
            None => Err(rquickjs::Error::new_loading_message(
                name,
                "failed to fetch the module: it was not supplied with the worker",
            )),
        }
    }
}

/// Declares a module with its `import.meta.url`, which QuickJS leaves to the embedder.
pub(crate) fn declare_module<'js>(
    ctx: &Ctx<'js>,
    url: &str,
    source: impl Into<Vec<u8>>,
) -> rquickjs::Result<Module<'js, Declared>> {
    let module = Module::declare(ctx.clone(), url, source)?;
    module.meta()?.set("url", url)?;
    Ok(module)
}

/// `reference` resolved against `base` as the URL parser does for the forms module
/// specifiers take (absolute URLs, `/`, `./`, `../`); `None` for a bare specifier.
pub(crate) fn resolve_url(base: &str, reference: &str) -> Option<String> {
    let has_scheme = |s: &str| {
        s.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        })
    };
    if has_scheme(reference) {
        return Some(reference.to_string());
    }
    if !(reference.starts_with('/') || reference.starts_with("./") || reference.starts_with("../"))
    {
        return None;
    }
    let (scheme, rest) = base.split_once(':')?;
    if let Some(host_relative) = reference.strip_prefix("//") {
        return Some(format!("{scheme}://{host_relative}"));
    }
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(i) => (format!("//{}", &after[..i]), &after[i..]),
            None => (format!("//{after}"), "/"),
        },
        None => (String::new(), rest),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let (ref_path, suffix) = match reference.find(['?', '#']) {
        Some(i) => (&reference[..i], &reference[i..]),
        None => (reference, ""),
    };
    let joined = if ref_path.starts_with('/') {
        ref_path.to_string()
    } else {
        format!(
            "{}{ref_path}",
            &path[..path.rfind('/').map_or(0, |i| i + 1)]
        )
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = joined.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i == segments.len() - 1;
        match *seg {
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            "." => {
                if last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    let mut path = out.join("/");
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Some(format!("{scheme}:{authority}{path}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_specifiers_resolve_as_urls() {
        let base = "https://example.test/app/w.mjs?x=1";
        assert_eq!(
            resolve_url(base, "./a.mjs").as_deref(),
            Some("https://example.test/app/a.mjs")
        );
        assert_eq!(
            resolve_url(base, "../b.mjs").as_deref(),
            Some("https://example.test/b.mjs")
        );
        assert_eq!(
            resolve_url(base, "/c.mjs?v=2").as_deref(),
            Some("https://example.test/c.mjs?v=2")
        );
        assert_eq!(
            resolve_url(base, "../../../d.mjs").as_deref(),
            Some("https://example.test/d.mjs")
        );
        assert_eq!(
            resolve_url(base, "https://cdn.test/e.mjs").as_deref(),
            Some("https://cdn.test/e.mjs")
        );
        assert_eq!(resolve_url(base, "lodash"), None);
    }
}
