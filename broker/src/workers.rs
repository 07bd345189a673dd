//! Executor processes, seen from the broker: one child process per remote worker.
//!
//! [`spawn`] starts the child (environment cleared, stdin/stdout piped, stderr inherited so
//! its diagnostics land in the broker's log) or takes the connection's [`Spare`], one started
//! ahead of need (off the runtime's threads: [`SpareStart`]), sets a QuickJS executor's
//! rlimits from outside (`executor::sandbox::apply_limits`: its seccomp filter refuses it the
//! system calls to change them itself), writes `start` to its stdin (what the pipe does not
//! take at once is queued), and starts one task that drives two things at once:
//!
//! * the input half writes the queued frames to the child's stdin, in order;
//! * the supervisor reads frames from its stdout and forwards them, in order, to the owning
//!   connection as [`WorkerEvent`]s; it kills the child when told to (terminate, lease end,
//!   disconnect), reaps it, works out the exit reason and emits
//!   [`BrokerEvent::WorkerExited`] once the process is gone.
//!
//! The connection decides about kills it asks for and reports them to its client at once;
//! the supervisor reports only ends the connection did not ask for (`closed`, limits,
//! crashes).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use foresight_shared::framing::{FrameDecoder, FrameError, encode_frame, encode_message};
use foresight_shared::limits::EXECUTOR_MAX_FRAME;
use foresight_shared::protocol::broker::{EngineKind, LeaseId, ScriptSource, WorkerExitReason};
use foresight_shared::protocol::executor::{
    ConsoleLevel, DATA_FRAME, ExecutorLimits, FromExecutor, ToExecutor, data_frame,
};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::config::ExecutorCommand;
use crate::events::{BrokerEvent, Events};
use crate::executor::sandbox;
use crate::node::cgroup::ChildCgroup;
use crate::node::watchdog::{self, Verdict};
use crate::node::{NODE_BASE_MEMORY, NodeBackend, NodeChild};

/// Bytes of page -> worker messages that may wait for one executor to read them. Beyond it
/// the page is told the message was refused rather than the broker buffering without bound.
pub(crate) const INPUT_QUEUE_BYTES: usize = 64 * 1024 * 1024;

/// How long an executor that closed its stdout may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// What to run, under which lease, with which limits.
pub(crate) struct WorkerSpec {
    pub(crate) worker_id: String,
    pub(crate) lease_id: LeaseId,
    pub(crate) script_url: String,
    pub(crate) source: String,
    pub(crate) imports: Vec<ScriptSource>,
    pub(crate) name: String,
    pub(crate) module: bool,
    pub(crate) limits: ExecutorLimits,
    /// The lease's CPU, for a Node child's cgroup weight.
    pub(crate) cpu_millicores: u64,
}

/// The process a worker runs in: a QuickJS executor (a connection's spare, or a new one) or
/// a confined Node child from the pool.
pub(crate) enum Process {
    QuickJs(Spare),
    Node(NodeChild, Arc<NodeBackend>),
}

impl Process {
    /// A QuickJS executor: `spare` if it is still alive, else a new process.
    pub(crate) fn quickjs(command: &ExecutorCommand, spare: Option<Spare>) -> io::Result<Self> {
        Ok(Self::QuickJs(match spare {
            Some(mut spare) => {
                if spare.alive() {
                    spare
                } else {
                    Spare::start(command)?
                }
            }
            None => Spare::start(command)?,
        }))
    }

    /// A Node child from `backend`'s pool.
    pub(crate) fn node(backend: &Arc<NodeBackend>) -> io::Result<Self> {
        Ok(Self::Node(backend.take()?, backend.clone()))
    }
}

/// What the supervisor of a Node worker keeps: its cgroup, the watchdog's verdict, and the
/// backend's count of live workers (decremented when this is dropped).
struct NodeRun {
    cgroup: ChildCgroup,
    backend: Arc<NodeBackend>,
    verdict: Arc<Verdict>,
    budget: Duration,
    /// Whether the child was booted when taken: the watchdog is armed at once; otherwise at
    /// its `ready`, so its own boot is not charged to the worker.
    warm: bool,
}

impl Drop for NodeRun {
    fn drop(&mut self) {
        self.backend.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Output of a worker, for its connection.
#[derive(Debug)]
pub(crate) enum WorkerOutput {
    Started,
    /// `postMessage` from the worker: structured-clone bytes, relayed as they came.
    Message(Vec<u8>),
    Error {
        message: String,
        lineno: Option<u32>,
    },
    Console {
        level: ConsoleLevel,
        text: String,
    },
    /// The worker ended on its own (closed, a limit, a crash); the process has been reaped.
    /// With the CPU time the executor reported, if it could.
    Ended(WorkerExitReason, Option<u64>),
    /// Not from the executor: the data channel the worker is bound to closed
    /// (`connection/channel.rs`); the owner ends the worker.
    ChannelClosed,
}

#[derive(Debug)]
pub(crate) struct WorkerEvent {
    /// Tells this worker from an earlier one that had the same `worker_id`.
    pub(crate) serial: u64,
    pub(crate) worker_id: String,
    pub(crate) output: WorkerOutput,
}

/// Why a message could not be queued for a worker.
#[derive(Debug)]
pub(crate) enum QueueError {
    /// Too many bytes are already waiting for this executor.
    Full { pending: usize },
    /// The executor is gone; its end is being reported.
    Gone,
    /// The message cannot be framed.
    Encode(FrameError),
}

/// The executor's input queue, shared by the worker's owner and its data channel: the same
/// order and the same bound on waiting bytes for both.
#[derive(Clone)]
pub(crate) struct WorkerInput {
    input: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<AtomicUsize>,
}

impl WorkerInput {
    /// Queues `postMessage` data (structured-clone bytes) for the worker, in order.
    pub(crate) fn post(&self, data: &[u8]) -> Result<(), QueueError> {
        let frame =
            encode_frame(&data_frame(data), EXECUTOR_MAX_FRAME).map_err(QueueError::Encode)?;
        self.queue(frame)
    }

    fn queue(&self, frame: Vec<u8>) -> Result<(), QueueError> {
        let pending = self.pending.load(Ordering::Acquire);
        if pending.saturating_add(frame.len()) > INPUT_QUEUE_BYTES {
            return Err(QueueError::Full { pending });
        }
        self.pending.fetch_add(frame.len(), Ordering::AcqRel);
        self.input.send(frame).map_err(|_| QueueError::Gone)
    }
}

/// The connection's handle on one live worker.
pub(crate) struct WorkerHandle {
    pub(crate) serial: u64,
    pub(crate) lease_id: LeaseId,
    pub(crate) script_url: String,
    pub(crate) pid: u32,
    pub(crate) engine: EngineKind,
    /// Whether the client has been sent `worker_started`.
    pub(crate) announced: bool,
    input: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<AtomicUsize>,
    kill: Option<oneshot::Sender<WorkerExitReason>>,
}

impl WorkerHandle {
    fn queue(&self, frame: Vec<u8>) -> Result<(), QueueError> {
        self.input().queue(frame)
    }

    /// The worker's input, where its `postMessage` data is queued (by its connection, or by
    /// the data channel it is bound to).
    pub(crate) fn input(&self) -> WorkerInput {
        WorkerInput {
            input: self.input.clone(),
            pending: self.pending.clone(),
        }
    }

    /// CPU time the executor has used so far, in ms, as the kernel counts it (not as the
    /// executor says): for reporting usage when the broker ends a worker itself.
    pub(crate) fn cpu_ms(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // After the command name (which may hold spaces): utime and stime are fields 14 and
        // 15 of the line, the 12th and 13th after the name.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
        Some((utime + stime) * 1000 / ticks)
    }

    /// Kills the executor; `reason` is what the supervisor records once it is reaped.
    pub(crate) fn kill(mut self, reason: WorkerExitReason) {
        if let Some(kill) = self.kill.take() {
            // An error means the supervisor already finished: the process is gone.
            let _ = kill.send(reason);
        }
    }
}

/// An executor process started ahead of need: sandboxed and waiting for its `start`, so that
/// the next worker of the connection that keeps it does not wait for a process to be created
/// (fork, exec, dynamic linking, a new network namespace). Killed when dropped.
pub(crate) struct Spare {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Spare {
    /// Starts an executor process that waits for its `start`.
    pub(crate) fn start(command: &ExecutorCommand) -> io::Result<Self> {
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // A Ctrl-C at the broker's terminal is for the broker, which then ends its workers
            // in order; it must not reach them first and look like a crash.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("executor started without pipes"));
        };
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// Whether the process is still there to be given a worker (one that failed to set up
    /// its sandbox has exited: it is reaped here and replaced).
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// A [`Spare`] being started on the runtime's blocking pool. Creating a process blocks the
/// calling thread until the child has exec'd (0.2-0.3 ms, up to 3 ms while other processes
/// compete for the CPU). On one of the runtime's worker threads, right after a worker's
/// `worker_started` went out, that held up the I/O of the tasks that thread would have
/// served: in the benchmark, whose client shares the broker's runtime, `worker_started`
/// reached the client that much later.
pub(crate) struct SpareStart(tokio::task::JoinHandle<io::Result<Spare>>);

impl SpareStart {
    pub(crate) fn begin(command: &ExecutorCommand, events: Events) -> Self {
        let command = command.clone();
        Self(tokio::task::spawn_blocking(move || {
            let spare = Spare::start(&command)?;
            events.emit(BrokerEvent::SpareExecutorStarted {
                executor_pid: spare.child.id().unwrap_or(0),
            });
            Ok(spare)
        }))
    }

    /// The spare, once its process exists (waiting for that if need be); `None`, logged, if
    /// it could not be started. Dropped instead, the spare is killed once started.
    pub(crate) async fn ready(self) -> Option<Spare> {
        let started = self.0.await.unwrap_or_else(|e| Err(io::Error::other(e)));
        match started {
            Ok(spare) => Some(spare),
            Err(e) => {
                tracing::debug!("no spare executor: {e}");
                None
            }
        }
    }
}

/// Starts worker `spec` in `process`. Its task (the input half and the supervisor) goes into
/// `tasks`, so the connection can wait for every process to be reaped before it finishes.
pub(crate) fn spawn(
    process: Process,
    spec: WorkerSpec,
    serial: u64,
    connection: mpsc::Sender<WorkerEvent>,
    events: Events,
    tasks: &mut JoinSet<()>,
) -> io::Result<WorkerHandle> {
    let mut boot = None;
    let engine = match &process {
        Process::QuickJs(_) => EngineKind::Quickjs,
        Process::Node(..) => EngineKind::Node,
    };
    let (child, stdin, stdout, node) = match process {
        Process::QuickJs(Spare {
            child,
            stdin,
            stdout,
        }) => {
            // The lease's limits, before `start`: they hold before any of the worker's code
            // runs. The executor cannot set them itself (its seccomp filter refuses it).
            let notes = match child.id() {
                Some(pid) => sandbox::apply_limits(pid, &spec.limits),
                None => vec!["no rlimits set: the executor has been reaped".to_string()],
            };
            for note in notes {
                tracing::warn!(worker_id = %spec.worker_id, "executor limits: {note}");
            }
            (child, stdin, stdout, None)
        }
        Process::Node(c, backend) => {
            // The lease's memory is the script's; the child's own needs come on top.
            let applied = c
                .cgroup
                .set_memory(spec.limits.memory_bytes.saturating_add(NODE_BASE_MEMORY))
                .and_then(|()| c.cgroup.set_cpu(spec.cpu_millicores));
            if let Err(e) = applied {
                c.cgroup.kill_all();
                return Err(io::Error::other(format!(
                    "cannot limit the Node child: {e}"
                )));
            }
            if !c.warm {
                boot = Some(backend.boot_frame().to_vec());
            }
            backend.live.fetch_add(1, Ordering::AcqRel);
            let run = NodeRun {
                cgroup: c.cgroup,
                backend,
                verdict: Arc::new(Verdict::new()),
                budget: Duration::from_millis(spec.limits.cpu_ms),
                warm: c.warm,
            };
            (c.child, c.stdin, c.stdout, Some(run))
        }
    };
    let pid = child.id().unwrap_or(0);

    let (input, input_rx) = mpsc::unbounded_channel();
    let pending = Arc::new(AtomicUsize::new(0));
    let (kill, kill_rx) = oneshot::channel();
    let handle = WorkerHandle {
        serial,
        lease_id: spec.lease_id,
        script_url: spec.script_url.clone(),
        pid,
        engine,
        announced: false,
        input,
        pending: pending.clone(),
        kill: Some(kill),
    };
    let start = encode_message(
        &ToExecutor::Start {
            script_url: spec.script_url,
            source: spec.source,
            limits: spec.limits,
            imports: spec.imports,
            name: spec.name,
            module: spec.module,
        },
        EXECUTOR_MAX_FRAME,
    )
    .map_err(|e| io::Error::other(format!("cannot encode start: {e}")))?;
    let mut first = boot.unwrap_or_default();
    first.extend_from_slice(&start);
    // Written here rather than by the input half: its first turn would come only once this
    // task has yielded or another runtime thread has been woken for it, on the way to every
    // worker's start. What the pipe does not take at once (a large script) is queued ahead
    // of anything else.
    let mut stdin = stdin;
    let written = write_now(&mut stdin, &first);
    if written < first.len() {
        handle
            .queue(first.split_off(written))
            .map_err(|e| io::Error::other(format!("cannot queue start: {e:?}")))?;
    }

    let supervisor = Supervisor {
        child,
        stdout,
        kill: kill_rx,
        connection,
        events,
        serial,
        worker_id: spec.worker_id,
        node,
        armed: None,
    };
    // One task for both directions: spawning a second one wakes another runtime thread
    // (tokio runs one newly spawned task in place, and hands the next to an idle thread),
    // which then competes with the starting executor for the CPU.
    tasks.spawn(async move {
        tokio::join!(write_input(stdin, input_rx, pending), supervise(supervisor));
    });
    Ok(handle)
}

/// Writes as much of `bytes` to the executor's stdin as the pipe takes without waiting, and
/// returns how much that was (0 if the pipe is full or not yet known to be writable, or the
/// executor is gone: the input half finds out which, when it writes the rest). Polled with
/// a waker that does nothing: should the pipe not be ready, the input half's own poll
/// registers its waker in this one's place.
fn write_now(stdin: &mut ChildStdin, bytes: &[u8]) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut written = 0;
    while written < bytes.len() {
        match Pin::new(&mut *stdin).poll_write(&mut cx, &bytes[written..]) {
            Poll::Ready(Ok(n)) if n > 0 => written += n,
            _ => break,
        }
    }
    written
}

async fn write_input(
    mut stdin: ChildStdin,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    pending: Arc<AtomicUsize>,
) {
    while let Some(frame) = frames.recv().await {
        let written = stdin.write_all(&frame).await;
        pending.fetch_sub(frame.len(), Ordering::AcqRel);
        if written.is_err() {
            // The executor is gone; the supervisor reports why.
            return;
        }
    }
    // The handle was dropped: closing stdin tells the executor to stop.
}

struct Supervisor {
    child: Child,
    stdout: ChildStdout,
    kill: oneshot::Receiver<WorkerExitReason>,
    connection: mpsc::Sender<WorkerEvent>,
    events: Events,
    serial: u64,
    worker_id: String,
    node: Option<NodeRun>,
    /// The Node watchdog, once armed.
    armed: Option<tokio::task::JoinHandle<()>>,
}

impl Supervisor {
    /// Starts the Node watchdog on the child's CPU clock (once).
    fn arm(&mut self) {
        if self.armed.is_some() {
            return;
        }
        if let (Some(run), Some(pid)) = (&self.node, self.child.id()) {
            self.armed = Some(tokio::spawn(watchdog::watch(
                pid as i32,
                run.budget,
                run.verdict.clone(),
            )));
        }
    }
}

/// How a worker's run ended, as far as the supervisor can tell before reaping.
enum End {
    /// The connection asked for the kill (or went away).
    Requested(WorkerExitReason),
    /// The executor closed its stdout; `reported` is what its `exited` said, if anything.
    Natural {
        reported: Option<(WorkerExitReason, Option<u64>)>,
    },
    /// The executor broke the protocol: killed, and reported as a crash.
    Broken,
}

async fn supervise(mut s: Supervisor) {
    if s.node.as_ref().is_some_and(|n| n.warm) {
        s.arm();
    }
    let end = relay(&mut s).await;
    let mut node_cpu_ms = None;
    if let Some(run) = &s.node {
        // What it used, read before the kill and the reaping; then the whole cgroup goes.
        node_cpu_ms = s
            .child
            .id()
            .and_then(|pid| run.verdict.used_now(pid as i32));
        run.cgroup.kill_all();
    }
    let (status, end) = match end {
        End::Requested(reason) => (kill_and_reap(&mut s.child).await, End::Requested(reason)),
        End::Broken => (kill_and_reap(&mut s.child).await, End::Broken),
        End::Natural { reported } => {
            tokio::select! {
                status = tokio::time::timeout(EXIT_GRACE, s.child.wait()) => match status {
                    Ok(status) => (status, End::Natural { reported }),
                    Err(_) => (kill_and_reap(&mut s.child).await, End::Natural { reported }),
                },
                reason = &mut s.kill => {
                    let reason = reason.unwrap_or(WorkerExitReason::Terminated);
                    (kill_and_reap(&mut s.child).await, End::Requested(reason))
                }
            }
        }
    };
    if let Some(watch) = s.armed.take() {
        watch.abort();
    }
    let (mut reason, mut cpu_ms, tell_connection) = match end {
        End::Requested(reason) => (reason, None, false),
        End::Broken => (WorkerExitReason::Crashed, None, true),
        End::Natural { reported } => (
            natural_reason(reported.map(|r| r.0), status.as_ref().ok()),
            reported.and_then(|r| r.1),
            true,
        ),
    };
    if let Some(run) = s.node.take() {
        // A Node child is stopped from outside: by the watchdog (CPU) or the kernel (memory).
        let used = node_cpu_ms.or(Some(run.verdict.used_ms.load(Ordering::Relaxed)));
        if run.verdict.exceeded.load(Ordering::SeqCst) {
            reason = WorkerExitReason::CpuLimit;
            cpu_ms = used;
            run.backend.cpu_kills.fetch_add(1, Ordering::Relaxed);
        } else if run.cgroup.oom_killed() {
            if reason == WorkerExitReason::Crashed {
                reason = WorkerExitReason::MemoryLimit;
                cpu_ms = used;
            }
            run.backend.oom_kills.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(peak) = run.cgroup.peak_memory() {
            run.backend.peak_memory.fetch_max(peak, Ordering::Relaxed);
        }
        run.cgroup.remove();
    }
    if let Ok(status) = &status
        && reason == WorkerExitReason::Crashed
    {
        tracing::warn!(worker_id = %s.worker_id, %status, "executor crashed");
    }
    s.events.emit(BrokerEvent::WorkerExited {
        worker_id: s.worker_id.clone(),
        reason,
    });
    if tell_connection {
        let _ = s
            .connection
            .send(WorkerEvent {
                serial: s.serial,
                worker_id: s.worker_id,
                output: WorkerOutput::Ended(reason, cpu_ms),
            })
            .await;
    }
}

/// Forwards the executor's output until it stops, breaks the protocol or must be killed.
async fn relay(s: &mut Supervisor) -> End {
    let mut decoder = FrameDecoder::new(EXECUTOR_MAX_FRAME);
    let mut buf = vec![0u8; 64 * 1024];
    let mut reported = None;
    loop {
        let read = tokio::select! {
            reason = &mut s.kill => {
                return End::Requested(reason.unwrap_or(WorkerExitReason::Terminated));
            }
            read = s.stdout.read(&mut buf) => read,
        };
        let n = match read {
            Ok(0) | Err(_) => return End::Natural { reported },
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            let message = match frame {
                Ok(mut f) if f.first() == Some(&DATA_FRAME) => {
                    f.remove(0);
                    Ok(Err(f))
                }
                Ok(f) => serde_json::from_slice::<FromExecutor>(&f)
                    .map(Ok)
                    .map_err(FrameError::from),
                Err(e) => Err(e),
            };
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!(worker_id = %s.worker_id, "executor broke the protocol: {e}");
                    return End::Broken;
                }
            };
            let output = match message {
                Err(data) => WorkerOutput::Message(data),
                Ok(FromExecutor::Started) => WorkerOutput::Started,
                Ok(FromExecutor::Error { message, lineno }) => {
                    WorkerOutput::Error { message, lineno }
                }
                Ok(FromExecutor::Console { level, text }) => WorkerOutput::Console { level, text },
                Ok(FromExecutor::Exited { reason, cpu_ms }) => {
                    reported = Some((reason, cpu_ms));
                    continue;
                }
                Ok(FromExecutor::Ready) => {
                    // A cold Node child finished booting: its worker's CPU counts from now.
                    s.arm();
                    continue;
                }
                Ok(FromExecutor::Unknown) => continue,
            };
            let event = WorkerEvent {
                serial: s.serial,
                worker_id: s.worker_id.clone(),
                output,
            };
            // Waiting here is the backpressure on a chatty worker; a kill still gets through.
            tokio::select! {
                reason = &mut s.kill => {
                    return End::Requested(reason.unwrap_or(WorkerExitReason::Terminated));
                }
                sent = s.connection.send(event) => {
                    if sent.is_err() {
                        return End::Requested(WorkerExitReason::Terminated);
                    }
                }
            }
        }
    }
}

async fn kill_and_reap(child: &mut Child) -> io::Result<ExitStatus> {
    // An error means it has exited already; wait() reaps it either way.
    let _ = child.start_kill();
    child.wait().await
}

/// The exit reason of an executor that stopped without being asked to.
fn natural_reason(
    reported: Option<WorkerExitReason>,
    status: Option<&ExitStatus>,
) -> WorkerExitReason {
    if let Some(reason) = reported {
        return reason;
    }
    // SIGXCPU: the kernel's RLIMIT_CPU backstop fired before the engine's own check.
    if status.and_then(ExitStatus::signal) == Some(libc::SIGXCPU) {
        return WorkerExitReason::CpuLimit;
    }
    WorkerExitReason::Crashed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons() {
        let by_signal = |sig: i32| ExitStatus::from_raw(sig);
        let exited = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(
            natural_reason(Some(WorkerExitReason::Closed), Some(&exited(0))),
            WorkerExitReason::Closed
        );
        assert_eq!(
            natural_reason(None, Some(&by_signal(libc::SIGXCPU))),
            WorkerExitReason::CpuLimit
        );
        assert_eq!(
            natural_reason(None, Some(&by_signal(libc::SIGSEGV))),
            WorkerExitReason::Crashed
        );
        assert_eq!(
            natural_reason(None, Some(&exited(0))),
            WorkerExitReason::Crashed
        );
        assert_eq!(natural_reason(None, None), WorkerExitReason::Crashed);
    }
}
