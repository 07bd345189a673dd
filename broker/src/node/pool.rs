//! The pool of pre-started Node children: each booted (runner, codec and prelude loaded,
//! `ready` received) and waiting for the one `start` it will ever get. Taking a child hands
//! it over as is; its replacement is booted in the background once the worker has started
//! ([`NodeBackend::refill`], called by whoever waits for that start), so the two never
//! compete for a core. When the pool is empty, a cold child is started on the spot (its boot
//! frame goes ahead of `start` on its stdin).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use foresight_shared::framing::FrameDecoder;
use foresight_shared::limits::EXECUTOR_MAX_FRAME;
use foresight_shared::protocol::executor::FromExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::NodeBackend;
use super::cgroup::ChildCgroup;

/// Longest a child may take to boot before it is given up.
const BOOT_TIMEOUT: Duration = Duration::from_secs(20);

/// One confined node process for one worker.
pub struct NodeChild {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub cgroup: ChildCgroup,
    /// Booted already; otherwise its boot frame must be written first.
    pub warm: bool,
}

impl NodeBackend {
    /// Fills the pool (call once, inside the runtime).
    pub fn start_pool(self: &Arc<Self>) {
        for _ in 0..self.settings.pool_size {
            self.refill();
        }
    }

    /// Boots children until the pool is full again (in the background). Called once a
    /// taken child's worker has started, so booting its replacement (a core for ~40 ms)
    /// never competes with that start.
    pub(crate) fn refill(self: &Arc<Self>) {
        let waiting = self.idle() + self.warming.load(Ordering::Acquire);
        if waiting >= self.settings.pool_size || self.closed.load(Ordering::Acquire) {
            return;
        }
        self.warming.fetch_add(1, Ordering::AcqRel);
        let me = self.clone();
        tokio::spawn(async move {
            let warmed = me.warm_up().await;
            match warmed {
                // Booted after `drain`: nobody will take it.
                Ok(mut child) if me.closed.load(Ordering::Acquire) => {
                    discard(&mut child.child, &child.cgroup).await;
                }
                Ok(child) => {
                    if let Ok(mut idle) = me.idle.lock() {
                        idle.push(child);
                    }
                }
                Err(e) => tracing::warn!("a Node child did not boot: {e}"),
            }
            me.warming.fetch_sub(1, Ordering::AcqRel);
            me.settled.notify_waiters();
        });
    }

    async fn warm_up(&self) -> std::io::Result<NodeChild> {
        let (mut child, mut stdin, mut stdout, cgroup) = self.launch()?;
        let booted = tokio::time::timeout(BOOT_TIMEOUT, async {
            stdin.write_all(self.boot_frame()).await?;
            wait_ready(&mut stdout).await
        })
        .await;
        match booted {
            Ok(Ok(())) => Ok(NodeChild {
                child,
                stdin,
                stdout,
                cgroup,
                warm: true,
            }),
            Ok(Err(e)) => {
                discard(&mut child, &cgroup).await;
                Err(e)
            }
            Err(_) => {
                discard(&mut child, &cgroup).await;
                Err(std::io::Error::other("boot timed out"))
            }
        }
    }

    /// A child for one worker: a booted one from the pool, else a cold one.
    pub fn take(self: &Arc<Self>) -> std::io::Result<NodeChild> {
        let warm = loop {
            let next = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            match next {
                Some(mut c) => {
                    if matches!(c.child.try_wait(), Ok(None)) {
                        break Some(c);
                    }
                    c.cgroup.remove();
                }
                None => break None,
            }
        };
        let child = match warm {
            Some(c) => {
                self.started_warm.fetch_add(1, Ordering::Relaxed);
                c
            }
            None => {
                let (child, stdin, stdout, cgroup) = self.launch()?;
                self.started_cold.fetch_add(1, Ordering::Relaxed);
                NodeChild {
                    child,
                    stdin,
                    stdout,
                    cgroup,
                    warm: false,
                }
            }
        };
        Ok(child)
    }

    /// Kills the waiting children and removes their cgroups (at shutdown), after the ones
    /// still booting have settled, so no child or cgroup outlives the broker.
    pub async fn drain(&self) {
        self.closed.store(true, Ordering::Release);
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if self.warming.load(Ordering::Acquire) == 0
                || tokio::time::timeout(BOOT_TIMEOUT, settled).await.is_err()
            {
                break;
            }
        }
        let idle: Vec<NodeChild> = self
            .idle
            .lock()
            .map(|mut idle| idle.drain(..).collect())
            .unwrap_or_default();
        for mut c in idle {
            discard(&mut c.child, &c.cgroup).await;
        }
    }
}

/// Reads frames until `ready` (nothing else comes before it).
async fn wait_ready(stdout: &mut ChildStdout) -> std::io::Result<()> {
    let mut decoder = FrameDecoder::new(EXECUTOR_MAX_FRAME);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other("the child exited while booting"));
        }
        decoder.push(&buf[..n]);
        if let Some(frame) = decoder.next_frame() {
            let frame = frame.map_err(std::io::Error::other)?;
            return match serde_json::from_slice::<FromExecutor>(&frame) {
                Ok(FromExecutor::Ready) if decoder.buffered() == 0 => Ok(()),
                other => Err(std::io::Error::other(format!(
                    "expected ready from the child, got {other:?}"
                ))),
            };
        }
    }
}

/// Kills a child with its cgroup, reaps it and removes the cgroup.
pub(crate) async fn discard(child: &mut Child, cgroup: &ChildCgroup) {
    cgroup.kill_all();
    let _ = child.start_kill();
    let _ = child.wait().await;
    cgroup.remove();
}
