//! The hosted broker's configuration file (TOML), applied under the command line: a value
//! from a flag or its environment variable wins over the file, the file over the defaults.
//! Access tokens are only read from the file, never from flags (which `ps` shows).
//!
//! Unknown keys are errors, not ignored: a misspelt `messages_per_sec` silently leaving a
//! public broker unlimited is worse than refusing to start. Every error names the key.
//!
//! ```toml
//! listen = "0.0.0.0:47800"
//! metrics_listen = "127.0.0.1:9477"
//! allowed_origins = ["chrome-extension://*", "moz-extension://*"]
//!
//! [pool]                       # a fixed pool; or [scaling] below
//! cpu_millicores = 8000
//! memory_bytes = 17179869184
//! max_ttl_ms = 3600000
//! revoke_grace_ms = 1000
//! shutdown_grace_ms = 5000
//! max_queue_wait_ms = 60000
//!
//! [scaling]                    # the pool in executor units, between a minimum and a maximum
//! min_executors = 1
//! max_executors = 8
//! executor_cpu_millicores = 1000
//! executor_memory_bytes = 536870912
//! idle_ms = 30000
//!
//! [tls]                        # wss; paths relative to the working directory
//! cert = "/etc/foresight/broker-chain.pem"
//! key = "/etc/foresight/broker-key.pem"
//!
//! [node]                       # workers on V8 in a kernel-confined Node (see the README)
//! mode = "auto"                # auto (default): when node >= 20 and every layer is present
//! path = "/usr/bin/node"
//! accept_weaker_sandbox = false
//! pool_size = 2                # children kept booted and waiting
//! max_workers = 8
//! cgroup = "/sys/fs/cgroup/foresight.slice"   # a delegated v2 directory (default: found)
//! default_engine = "quickjs"   # for worker_spawn without an engine
//!
//! [limits]
//! max_connections = 4096
//! max_message_bytes = 16777216
//! messages_per_s = 200
//! message_burst = 400
//!
//! [[tokens]]
//! name = "alice"
//! token = "a long random secret"
//! max_cpu_millicores = 2000    # quota, all of the token's connections together
//! max_memory_bytes = 4294967296
//! max_connections = 4
//! weight = 2                   # fair share against other tokens (default 1)
//! ```

use std::path::Path;

use foresight_shared::protocol::plan::ResourceAmounts;
use toml::{Table, Value};

use crate::config::{BrokerConfig, ClientToken};
use crate::node::{NodeMode, NodeSettings};
use crate::scheduler::scaling::ScalingConfig;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

/// What the file says beyond [`BrokerConfig`]: where to listen, and the Node settings
/// (applied by the caller, which detects the backend under flags and environment).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Addresses {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub node: NodeSettings,
    /// `node.default_engine`: `quickjs` or `node`.
    pub default_engine: Option<String>,
}

/// Reads `path` and applies it to `config`.
pub fn load(path: &Path, config: &mut BrokerConfig) -> Result<Addresses, SettingsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: shown.clone(),
        source,
    })?;
    apply(&text, config).map_err(|e| match e {
        Problem::Syntax(message) => SettingsError::Syntax {
            path: shown.clone(),
            message,
        },
        Problem::Invalid { key, message } => SettingsError::Invalid {
            path: shown.clone(),
            key,
            message,
        },
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Problem {
    Syntax(String),
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> Problem {
    Problem::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// One table's keys, each taken at most once; what is left over is unknown.
struct Keys<'a> {
    prefix: String,
    table: &'a Table,
    taken: Vec<&'static str>,
}

impl<'a> Keys<'a> {
    fn new(prefix: &str, table: &'a Table) -> Self {
        Self {
            prefix: prefix.to_string(),
            table,
            taken: Vec::new(),
        }
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.taken.push(key);
        self.table.get(key)
    }

    fn u64(&mut self, key: &'static str) -> Result<Option<u64>, Problem> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Integer(n)) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| invalid(&self.name(key), "must not be negative")),
            Some(_) => Err(invalid(&self.name(key), "must be an integer")),
        }
    }

    fn string(&mut self, key: &'static str) -> Result<Option<String>, Problem> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(&self.name(key), "must be a string")),
        }
    }

    fn bool(&mut self, key: &'static str) -> Result<Option<bool>, Problem> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(&self.name(key), "must be true or false")),
        }
    }

    fn table(&mut self, key: &'static str) -> Result<Option<&'a Table>, Problem> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(_) => Err(invalid(&self.name(key), "must be a table")),
        }
    }

    fn finish(self) -> Result<(), Problem> {
        match self
            .table
            .keys()
            .find(|k| !self.taken.contains(&k.as_str()))
        {
            Some(unknown) => Err(invalid(&self.name(unknown), "unknown key")),
            None => Ok(()),
        }
    }
}

fn usize_of(key: &str, n: u64) -> Result<usize, Problem> {
    usize::try_from(n).map_err(|_| invalid(key, "too large"))
}

fn u32_of(key: &str, n: u64) -> Result<u32, Problem> {
    u32::try_from(n).map_err(|_| invalid(key, "too large"))
}

fn apply(text: &str, config: &mut BrokerConfig) -> Result<Addresses, Problem> {
    let root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| Problem::Syntax(e.to_string()))?;
    let mut keys = Keys::new("", &root);
    let mut addresses = Addresses {
        listen: keys.string("listen")?,
        metrics_listen: keys.string("metrics_listen")?,
        ..Addresses::default()
    };
    if let Some(node) = keys.table("node")? {
        let mut k = Keys::new("node.", node);
        let s = &mut addresses.node;
        if let Some(mode) = k.string("mode")? {
            s.mode = match mode.as_str() {
                "auto" => NodeMode::Auto,
                "on" => NodeMode::On,
                "off" => NodeMode::Off,
                _ => return Err(invalid("node.mode", "must be \"auto\", \"on\" or \"off\"")),
            };
        }
        if let Some(path) = k.string("path")? {
            s.path = Some(path.into());
        }
        if let Some(b) = k.bool("accept_weaker_sandbox")? {
            s.accept_weaker_sandbox = b;
        }
        if let Some(n) = k.u64("pool_size")? {
            s.pool_size = usize_of("node.pool_size", n)?;
        }
        if let Some(n) = k.u64("max_workers")? {
            s.max_workers = usize_of("node.max_workers", n)?;
        }
        if let Some(dir) = k.string("cgroup")? {
            s.cgroup = Some(dir.into());
        }
        if let Some(n) = k.u64("max_heap_mib")? {
            s.max_heap_mib = n;
        }
        if let Some(engine) = k.string("default_engine")? {
            if engine != "quickjs" && engine != "node" {
                return Err(invalid(
                    "node.default_engine",
                    "must be \"quickjs\" or \"node\"",
                ));
            }
            addresses.default_engine = Some(engine);
        }
        k.finish()?;
    }
    if let Some(value) = keys.get("allowed_origins") {
        let Value::Array(items) = value else {
            return Err(invalid("allowed_origins", "must be an array of strings"));
        };
        config.allowed_origins = items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("allowed_origins", "must be an array of strings"))?;
    }
    if let Some(pool) = keys.table("pool")? {
        let mut k = Keys::new("pool.", pool);
        if let Some(n) = k.u64("cpu_millicores")? {
            config.capacity.cpu_millicores = n;
        }
        if let Some(n) = k.u64("memory_bytes")? {
            config.capacity.memory_bytes = n;
        }
        if let Some(n) = k.u64("max_ttl_ms")? {
            config.max_ttl_ms = n;
        }
        if let Some(n) = k.u64("revoke_grace_ms")? {
            config.revoke_grace_ms = n;
        }
        if let Some(n) = k.u64("shutdown_grace_ms")? {
            config.shutdown_grace_ms = n;
        }
        if let Some(n) = k.u64("max_queue_wait_ms")? {
            config.max_queue_wait_ms = n;
        }
        k.finish()?;
    }
    if let Some(scaling) = keys.table("scaling")? {
        let mut k = Keys::new("scaling.", scaling);
        let required = |n: Option<u64>, key: &str| {
            n.ok_or_else(|| invalid(&format!("scaling.{key}"), "is required"))
        };
        let min = required(k.u64("min_executors")?, "min_executors")?;
        let max = required(k.u64("max_executors")?, "max_executors")?;
        let cpu = required(k.u64("executor_cpu_millicores")?, "executor_cpu_millicores")?;
        let memory = required(k.u64("executor_memory_bytes")?, "executor_memory_bytes")?;
        let idle_ms = k.u64("idle_ms")?.unwrap_or(30_000);
        k.finish()?;
        if min == 0 || max < min {
            return Err(invalid(
                "scaling",
                "needs 1 <= min_executors <= max_executors",
            ));
        }
        config.scaling = Some(ScalingConfig {
            unit: ResourceAmounts {
                cpu_millicores: cpu,
                memory_bytes: memory,
                bandwidth_bytes_per_s: 0,
            },
            min_units: min,
            max_units: max,
            idle_ms,
        });
    }
    if let Some(tls) = keys.table("tls")? {
        let mut k = Keys::new("tls.", tls);
        let cert = k
            .string("cert")?
            .ok_or_else(|| invalid("tls.cert", "is required"))?;
        let key = k
            .string("key")?
            .ok_or_else(|| invalid("tls.key", "is required"))?;
        k.finish()?;
        config.tls = Some(
            crate::tls::load(Path::new(&cert), Path::new(&key))
                .map_err(|e| invalid("tls", e.to_string()))?,
        );
    }
    if let Some(limits) = keys.table("limits")? {
        let mut k = Keys::new("limits.", limits);
        if let Some(n) = k.u64("max_connections")? {
            config.limits.max_connections = usize_of("limits.max_connections", n)?;
        }
        if let Some(n) = k.u64("max_message_bytes")? {
            config.limits.max_message_bytes = usize_of("limits.max_message_bytes", n)?;
        }
        if let Some(n) = k.u64("messages_per_s")? {
            config.limits.messages_per_s = u32_of("limits.messages_per_s", n)?;
        }
        if let Some(n) = k.u64("message_burst")? {
            config.limits.message_burst = u32_of("limits.message_burst", n)?;
        }
        k.finish()?;
    }
    if let Some(tokens) = keys.get("tokens") {
        let Value::Array(items) = tokens else {
            return Err(invalid("tokens", "must be an array of tables ([[tokens]])"));
        };
        config.tokens = items
            .iter()
            .enumerate()
            .map(|(i, item)| token(i, item))
            .collect::<Result<_, _>>()?;
    }
    keys.finish()?;
    Ok(addresses)
}

fn token(i: usize, item: &Value) -> Result<ClientToken, Problem> {
    let prefix = format!("tokens[{i}].");
    let Value::Table(table) = item else {
        return Err(invalid(&format!("tokens[{i}]"), "must be a table"));
    };
    let mut k = Keys::new(&prefix, table);
    let name = k
        .string("name")?
        .ok_or_else(|| invalid(&format!("{prefix}name"), "is required"))?;
    let secret = k
        .string("token")?
        .ok_or_else(|| invalid(&format!("{prefix}token"), "is required"))?;
    if secret.len() < 16 {
        return Err(invalid(
            &format!("{prefix}token"),
            "must be at least 16 characters",
        ));
    }
    let cpu = k.u64("max_cpu_millicores")?;
    let memory = k.u64("max_memory_bytes")?;
    let weight = k.u64("weight")?.unwrap_or(1).max(1);
    let max_connections = k
        .u64("max_connections")?
        .map(|n| usize_of(&format!("{prefix}max_connections"), n))
        .transpose()?;
    k.finish()?;
    let quota = (cpu.is_some() || memory.is_some()).then(|| ResourceAmounts {
        cpu_millicores: cpu.unwrap_or(u64::MAX),
        memory_bytes: memory.unwrap_or(u64::MAX),
        bandwidth_bytes_per_s: u64::MAX,
    });
    Ok(ClientToken {
        name,
        token: secret,
        quota,
        max_connections,
        weight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExecutorCommand;

    fn config() -> BrokerConfig {
        BrokerConfig::new(
            ResourceAmounts::default(),
            ExecutorCommand {
                program: "x".into(),
                args: vec![],
            },
        )
    }

    #[test]
    fn a_full_file_applies() {
        let mut c = config();
        let text = r#"
            listen = "0.0.0.0:47800"
            metrics_listen = "127.0.0.1:9477"
            allowed_origins = ["chrome-extension://abc"]
            [pool]
            cpu_millicores = 8000
            memory_bytes = 1024
            revoke_grace_ms = 5
            [scaling]
            min_executors = 1
            max_executors = 8
            executor_cpu_millicores = 1000
            executor_memory_bytes = 512
            [limits]
            messages_per_s = 200
            [[tokens]]
            name = "alice"
            token = "0123456789abcdef-alice"
            max_cpu_millicores = 2000
            max_connections = 4
        "#;
        let addresses = apply(text, &mut c).unwrap();
        assert_eq!(addresses.listen.as_deref(), Some("0.0.0.0:47800"));
        assert_eq!(addresses.metrics_listen.as_deref(), Some("127.0.0.1:9477"));
        assert_eq!(
            c.allowed_origins,
            vec!["chrome-extension://abc".to_string()]
        );
        assert_eq!(c.capacity.cpu_millicores, 8000);
        assert_eq!(c.revoke_grace_ms, 5);
        assert_eq!(c.scaling.as_ref().map(|s| s.max_units), Some(8));
        assert_eq!(c.limits.messages_per_s, 200);
        assert_eq!(c.tokens.len(), 1);
        assert_eq!(c.tokens[0].quota.map(|q| q.cpu_millicores), Some(2000));
        assert_eq!(c.tokens[0].max_connections, Some(4));
    }

    #[test]
    fn mistakes_name_the_key() {
        for (text, key) in [
            ("listn = \"x\"", "listn"),
            ("[limits]\nmessages_per_sec = 1", "limits.messages_per_sec"),
            ("[pool]\ncpu_millicores = -1", "pool.cpu_millicores"),
            ("[pool]\ncpu_millicores = \"many\"", "pool.cpu_millicores"),
            (
                "[[tokens]]\nname = \"a\"\ntoken = \"short\"",
                "tokens[0].token",
            ),
            ("[[tokens]]\ntoken = \"0123456789abcdef\"", "tokens[0].name"),
            (
                "[scaling]\nmin_executors = 2\nmax_executors = 1\nexecutor_cpu_millicores = 1\nexecutor_memory_bytes = 1",
                "scaling",
            ),
        ] {
            match apply(text, &mut config()) {
                Err(Problem::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            apply("= broken", &mut config()),
            Err(Problem::Syntax(_))
        ));
    }
}
