//! Executor mode (`foresight-broker executor`): the child process that runs exactly one
//! remote worker, so that page code never runs inside the broker and one tenant's worker
//! never shares a process with another's.
//!
//! The broker writes [`ToExecutor`] frames to our stdin and reads [`FromExecutor`] frames
//! from our stdout (`foresight_shared::framing`); stderr is for diagnostics only. The life of
//! an executor:
//!
//! 1. [`sandbox::harden_early`] while single-threaded, then the engine and the worker's world
//!    (codec, prelude) are prepared and the two helper threads are started: one that, once
//!    handed stdin, reads it into a channel (so the main thread can wait on input *or* the
//!    next timer, and so a closed stdin stops even a script stuck in a loop), and a watchdog
//!    that, once a budget is set, ends the process if the CPU budget is overrun by more than
//!    a grace period (the engine's own check is coarse). Then the limits every worker has
//!    ([`sandbox::fix_limits`]) and the seccomp filter ([`sandbox::confine`]). A spare
//!    executor waits with all of this ready, so a worker's start costs only its engine limits
//!    and its own script;
//! 2. the first frame must be `start`, which the main thread reads itself: read by the input
//!    thread, it took a thread hand-over (a wake-up) on the way to every worker's start. By
//!    then the broker has set the lease's process limits from outside
//!    ([`sandbox::apply_limits`]); the budget is set for the watchdog and the engine's limits
//!    are applied. Stdin goes to the input thread once the top level has run, or earlier if
//!    it runs long (`StdinHandover`);
//! 3. [`drive`] runs the worker's event loop over an [`engine::Engine`] until the worker
//!    closes, hits a limit or is told to stop; `exited` says why, and the process exits.

pub(crate) mod bpf;
pub mod engine;
mod modules;
pub mod node;
pub mod quickjs;
pub mod sandbox;

use std::cell::RefCell;
use std::io::{self, Stdin, Write};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use foresight_shared::framing::{FrameError, FrameReader, encode_frame, encode_message};
use foresight_shared::limits::EXECUTOR_MAX_FRAME;
use foresight_shared::protocol::broker::WorkerExitReason;
use foresight_shared::protocol::executor::{
    DATA_FRAME, ExecutorLimits, FromExecutor, ToExecutor, data_frame,
};

use engine::{Engine, Outbox, Script, Step};

/// What the input thread hands the event loop.
#[derive(Debug)]
pub enum Input {
    /// `postMessage` from the page: structured-clone bytes.
    Data(Vec<u8>),
    Control(ToExecutor),
}

/// Exit status when the broker broke the protocol (no `start` first).
const EXIT_PROTOCOL: u8 = 2;
/// Exit status when the sandbox or the engine could not be set up.
const EXIT_SETUP: u8 = 3;

/// Stack of the input thread, which only decodes frames.
const INPUT_THREAD_STACK: usize = 256 * 1024;

/// CPU time past the budget after which the watchdog ends the process, whatever the engine
/// is doing. The engine's own check normally stops the script at the budget.
const WATCHDOG_GRACE: Duration = Duration::from_millis(250);

/// How often the watchdog looks at the process's CPU clock, in CPU time: it sleeps on that
/// clock, so an executor that uses none (a spare waiting for `start`, a worker waiting for
/// messages) never wakes it.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(50);

/// The watchdog's budget until `start` sets one.
const NO_BUDGET: u64 = u64::MAX;

fn note(text: &str) {
    // stderr is inherited from the broker: prefix our lines so they can be told apart. A
    // failed write is not worth a panic: past RLIMIT_FSIZE, a stderr that is a file refuses
    // every write (EFBIG).
    let line = format!(
        "foresight-broker executor[{}]: {text}\n",
        std::process::id()
    );
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// Writes one frame to stdout under the stdout lock, so frames from different threads never
/// interleave. Returns the lock, for a caller that must be the last to write.
fn write_frame(message: &FromExecutor) -> (io::StdoutLock<'static>, io::Result<()>) {
    write_encoded(encode_message(message, EXECUTOR_MAX_FRAME))
}

fn write_encoded(frame: Result<Vec<u8>, FrameError>) -> (io::StdoutLock<'static>, io::Result<()>) {
    let mut out = io::stdout().lock();
    let written = match frame {
        Ok(frame) => out.write_all(&frame).and_then(|()| out.flush()),
        Err(e) => {
            // Payloads are bounded below the frame limit; this is a bug, not input.
            note(&format!("dropping an unencodable message: {e}"));
            Ok(())
        }
    };
    (out, written)
}

/// Sends frames to the broker over stdout. A failed write means the broker is gone: raise
/// `stop` so the script is interrupted and the process ends.
struct PipeOutbox {
    stop: Arc<AtomicBool>,
}

impl Outbox for PipeOutbox {
    fn send(&self, message: FromExecutor) {
        if write_frame(&message).1.is_err() {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    fn post(&self, data: Vec<u8>) {
        let frame = encode_frame(&data_frame(&data), EXECUTOR_MAX_FRAME);
        if write_encoded(frame).1.is_err() {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// This process's CPU time so far (all threads).
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// This process's CPU time so far, in whole milliseconds.
fn cpu_ms() -> u64 {
    u64::try_from(process_cpu_time().as_millis()).unwrap_or(u64::MAX)
}

/// Ends the process once it has used its CPU budget plus [`WATCHDOG_GRACE`], however the
/// engine is stuck: QuickJS checks for interrupts only every few thousand instructions, and a
/// script that keeps catching its own out-of-memory errors spends seconds in the collector
/// between two checks (../shared/PLATFORM.md). RLIMIT_CPU stays behind this as the kernel's
/// last word. Started before `start` arrives; `budget_ms` is [`NO_BUDGET`] until then. The
/// budget is read here, not sent: handing a value to a thread that waits for it wakes that
/// thread, which cost 5-20 us of every worker's start on a 2-vCPU VM.
fn watchdog(budget_ms: Arc<AtomicU64>) {
    loop {
        sleep_on_cpu_clock(WATCHDOG_PERIOD);
        let budget = budget_ms.load(Ordering::Acquire);
        if budget == NO_BUDGET {
            continue;
        }
        let limit = Duration::from_millis(budget).saturating_add(WATCHDOG_GRACE);
        if process_cpu_time() > limit {
            let (_last_writer, _) = write_frame(&FromExecutor::Exited {
                reason: WorkerExitReason::CpuLimit,
                cpu_ms: Some(cpu_ms()),
            });
            // Holding the stdout lock: nothing can follow `exited` on the pipe.
            // SAFETY: _exit ends the process at once; no Rust state is observed afterwards.
            unsafe { libc::_exit(0) }
        }
    }
}

/// Sleeps until this process (all its threads) has used `period` more CPU time, or a signal
/// interrupts the sleep. Should the kernel refuse to sleep on that clock, sleeps `period` of
/// wall-clock time instead.
fn sleep_on_cpu_clock(period: Duration) {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(period.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^9: fits any c_long.
        tv_nsec: period.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec for the duration of the call; no remainder is asked
    // for (null). clock_nanosleep returns an error number rather than setting errno.
    let rc = unsafe {
        libc::clock_nanosleep(libc::CLOCK_PROCESS_CPUTIME_ID, 0, &ts, std::ptr::null_mut())
    };
    if rc != 0 && rc != libc::EINTR {
        std::thread::sleep(period);
    }
}

/// Entry point of `foresight-broker executor`.
pub fn main() -> ExitCode {
    match sandbox::harden_early() {
        Ok(notes) => notes.iter().for_each(|n| note(n)),
        Err(e) => {
            note(&format!("refusing to run page code: {e}"));
            return ExitCode::from(EXIT_SETUP);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let outbox = Rc::new(PipeOutbox { stop: stop.clone() });
    // The engine, the worker's world and the helper threads are made before `start` arrives:
    // a spare executor waits with them ready, and a worker's start costs only its own script.
    let engine = quickjs::QuickJs::prepare(outbox.clone(), stop.clone());
    let Some(threads) = start_threads(stop.clone()) else {
        return ExitCode::from(EXIT_SETUP);
    };
    // With every thread started: the limits every worker has, then the filter, after which
    // the process reaches nothing outside and changes no rlimit (the broker sets the lease's).
    sandbox::fix_limits().iter().for_each(|n| note(n));
    if let Err(e) = sandbox::confine() {
        note(&e);
    }
    let mut reader = FrameReader::new(io::stdin(), EXECUTOR_MAX_FRAME);
    match read_start(&mut reader) {
        Ok(Some((script, limits))) => match engine {
            Ok(engine) => {
                let Threads {
                    stdin,
                    inbox,
                    budget,
                } = threads;
                let inbox = Inbox {
                    rx: inbox,
                    stdin: Rc::new(StdinHandover(RefCell::new(Some((stdin, reader))))),
                };
                run(&inbox, &budget, engine, &outbox, &script, &limits)
            }
            Err(e) => {
                note(&e);
                outbox.send(FromExecutor::Exited {
                    reason: WorkerExitReason::Crashed,
                    cpu_ms: Some(cpu_ms()),
                });
                ExitCode::from(EXIT_SETUP)
            }
        },
        Ok(None) => ExitCode::SUCCESS,
        Err(code) => ExitCode::from(code),
    }
}

type Pipe = FrameReader<Stdin>;

/// The helper threads, started before `start` arrives (no thread can be started once the
/// seccomp filter is in place), and what each waits for from the main thread.
struct Threads {
    /// Hands stdin, once `start` is read, to the input thread.
    stdin: mpsc::Sender<Pipe>,
    /// Where the input thread sends what it reads.
    inbox: Receiver<Input>,
    /// The CPU budget, in ms, for the watchdog to read.
    budget: Arc<AtomicU64>,
}

/// Starts the input thread (stdin, once handed over, into a channel) and the watchdog (which
/// looks for a budget). `None`, said why, if a thread cannot start.
fn start_threads(stop: Arc<AtomicBool>) -> Option<Threads> {
    let (stdin, stdin_rx) = mpsc::channel::<Pipe>();
    let (tx, inbox) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("executor-input".into())
        .stack_size(INPUT_THREAD_STACK)
        .spawn(move || {
            // No stdin handed over: the worker never started.
            if let Ok(reader) = stdin_rx.recv() {
                read_input(reader, tx, stop);
            }
        });
    if let Err(e) = spawned {
        note(&format!("cannot start the input thread: {e}"));
        return None;
    }
    let budget = Arc::new(AtomicU64::new(NO_BUDGET));
    let watched = budget.clone();
    let spawned = std::thread::Builder::new()
        .name("executor-watchdog".into())
        .stack_size(INPUT_THREAD_STACK)
        .spawn(move || watchdog(watched));
    if let Err(e) = spawned {
        note(&format!("cannot start the watchdog thread: {e}"));
        return None;
    }
    Some(Threads {
        stdin,
        inbox,
        budget,
    })
}

/// The event loop's input: what the input thread reads, and, until that thread has stdin,
/// the hand-over that gives it stdin.
pub struct Inbox {
    rx: Receiver<Input>,
    stdin: Rc<StdinHandover>,
}

impl Inbox {
    /// An inbox fed by `rx` alone.
    pub fn new(rx: Receiver<Input>) -> Self {
        Self {
            rx,
            stdin: Rc::new(StdinHandover(RefCell::new(None))),
        }
    }

    fn recv(&self) -> Result<Input, RecvTimeoutError> {
        self.stdin.give();
        self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
    }

    fn recv_timeout(&self, wait: Duration) -> Result<Input, RecvTimeoutError> {
        self.stdin.give();
        self.rx.recv_timeout(wait)
    }
}

/// Stdin on its way from the main thread, which reads `start` itself, to the input thread.
/// Handing it over wakes that thread, which cost the main thread 10-15 us on a 2-vCPU VM,
/// and 50-120 us when the woken thread landed on the main thread's CPU and preempted it. So
/// it is not done on the way to `started`, but when the event loop first waits for input,
/// right after `started`, or earlier, at the engine's first interrupt check if the top level
/// runs longer than a few thousand instructions: a closed stdin must still stop a top level
/// stuck in a loop.
struct StdinHandover(RefCell<Option<(mpsc::Sender<Pipe>, Pipe)>>);

impl StdinHandover {
    /// Hands stdin over, with the frames `reader` has already buffered, if not done yet.
    /// Should the input thread be gone, the inbox reports a disconnection and the worker ends.
    fn give(&self) {
        let pending = self.0.borrow_mut().take();
        if let Some((to, reader)) = pending {
            let _ = to.send(reader);
        }
    }
}

/// Reads the first frame, which must be `start`. `Ok(None)`: the broker went away (or said
/// `terminate`) first.
fn read_start(reader: &mut Pipe) -> Result<Option<(Script, ExecutorLimits)>, u8> {
    match next_input(reader) {
        Some(Input::Control(ToExecutor::Start {
            script_url,
            source,
            limits,
            imports,
            name,
            module,
        })) => Ok(Some((
            Script {
                url: script_url,
                source,
                imports,
                name,
                module,
            },
            limits,
        ))),
        Some(Input::Data(_)) => {
            note("expected start, got worker data");
            Err(EXIT_PROTOCOL)
        }
        Some(Input::Control(other)) => {
            note(&format!("expected start, got {other:?}"));
            Err(EXIT_PROTOCOL)
        }
        // The broker went away before starting us: nothing to do.
        None => Ok(None),
    }
}

fn run(
    inbox: &Inbox,
    budget: &AtomicU64,
    mut engine: quickjs::QuickJs,
    outbox: &Rc<PipeOutbox>,
    script: &Script,
    limits: &ExecutorLimits,
) -> ExitCode {
    // The watchdog reads it at its next look (see `watchdog`).
    budget.store(limits.cpu_ms.min(NO_BUDGET - 1), Ordering::Release);
    engine.limit(limits);
    let stdin = inbox.stdin.clone();
    engine.on_first_interrupt(Box::new(move || stdin.give()));
    let reason = drive(&mut engine, script, inbox, &**outbox);
    outbox.send(FromExecutor::Exited {
        reason,
        cpu_ms: Some(cpu_ms()),
    });
    // Leave without tearing the engine down: the process is about to vanish anyway, and a
    // runtime that hit a limit is not worth freeing object by object.
    std::process::exit(0)
}

/// Reads frames from the broker until stdin closes. A closed stdin or `terminate` raises
/// `stop`, which interrupts whatever script is running.
fn read_input(mut reader: Pipe, tx: mpsc::Sender<Input>, stop: Arc<AtomicBool>) {
    while let Some(input) = next_input(&mut reader) {
        if tx.send(input).is_err() {
            return;
        }
    }
    stop.store(true, Ordering::SeqCst);
}

/// The broker's next frame, decoded. `None` when there is no more input: stdin closed or
/// failed, or `terminate`.
fn next_input(reader: &mut Pipe) -> Option<Input> {
    match reader.read_frame() {
        Ok(Some(mut frame)) if frame.first() == Some(&DATA_FRAME) => {
            frame.remove(0);
            Some(Input::Data(frame))
        }
        Ok(Some(frame)) => match serde_json::from_slice::<ToExecutor>(&frame) {
            Ok(ToExecutor::Terminate) => None,
            Ok(message) => Some(Input::Control(message)),
            // Passed on as `Unknown`: before `start` that is a protocol error (the process
            // exits), afterwards the event loop ignores it.
            Err(e) => {
                note(&format!("undecodable frame: {e}"));
                Some(Input::Control(ToExecutor::Unknown))
            }
        },
        Ok(None) => None,
        Err(FrameError::TooLarge { len, max }) => {
            note(&format!("a {len}-byte frame (limit {max})"));
            Some(Input::Control(ToExecutor::Unknown))
        }
        Err(e) => {
            note(&format!("input failed: {e}"));
            None
        }
    }
}

/// The worker's event loop: the top level, then messages and timers in arrival order, one
/// task at a time, until the worker must end. Returns why it ended.
pub fn drive<E: Engine>(
    engine: &mut E,
    script: &Script,
    inbox: &Inbox,
    outbox: &dyn Outbox,
) -> WorkerExitReason {
    let mut step = engine.start(script);
    if matches!(step, Step::Continue | Step::Exit(WorkerExitReason::Closed)) {
        outbox.send(FromExecutor::Started);
    }
    loop {
        if let Step::Exit(reason) = step {
            return reason;
        }
        let received = match engine.next_timer() {
            Some(due) => inbox.recv_timeout(due.saturating_duration_since(Instant::now())),
            None => inbox.recv(),
        };
        step = match received {
            Ok(Input::Data(data)) => engine.deliver(&data),
            Ok(Input::Control(ToExecutor::Terminate)) | Err(RecvTimeoutError::Disconnected) => {
                Step::Exit(WorkerExitReason::Terminated)
            }
            Ok(Input::Control(ToExecutor::Start { .. })) => {
                note("ignoring a second start message");
                Step::Continue
            }
            Ok(Input::Control(ToExecutor::Unknown)) | Err(RecvTimeoutError::Timeout) => {
                Step::Continue
            }
        };
        if step == Step::Continue {
            step = engine.run_timers(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;

    use super::*;

    use foresight_shared::sclone;

    #[derive(Default)]
    struct Recorder(RefCell<Vec<Result<FromExecutor, serde_json::Value>>>);

    impl Outbox for Recorder {
        fn send(&self, message: FromExecutor) {
            self.0.borrow_mut().push(Ok(message));
        }
        fn post(&self, data: Vec<u8>) {
            let value = sclone::decode(&data).unwrap().to_json().unwrap();
            self.0.borrow_mut().push(Err(value));
        }
    }

    fn script(source: &str) -> Script {
        Script {
            url: "w.js".into(),
            source: source.into(),
            ..Script::default()
        }
    }

    fn message(v: serde_json::Value) -> Input {
        Input::Data(sclone::encode_json(&v))
    }

    fn limits() -> ExecutorLimits {
        ExecutorLimits {
            cpu_ms: 10_000,
            memory_bytes: 32 * 1024 * 1024,
            stack_bytes: 1024 * 1024,
        }
    }

    #[test]
    fn event_loop_interleaves_messages_and_timers_and_ends_on_close() {
        let recorder = Rc::new(Recorder::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut engine = quickjs::QuickJs::new(&limits(), recorder.clone(), stop).unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..3 {
            tx.send(message(json!(i))).unwrap();
        }
        tx.send(message(json!("bye"))).unwrap();
        let src = r#"
            let seen = [];
            onmessage = e => {
                if (e.data === 'bye') { setTimeout(() => { postMessage(seen); close(); }, 10); }
                else seen.push(e.data);
            };
        "#;
        let reason = drive(&mut engine, &script(src), &Inbox::new(rx), &*recorder);
        assert_eq!(reason, WorkerExitReason::Closed);
        assert_eq!(
            recorder.0.borrow().as_slice(),
            [Ok(FromExecutor::Started), Err(json!([0, 1, 2]))]
        );
    }

    #[test]
    fn event_loop_ends_when_the_broker_goes_away() {
        let recorder = Rc::new(Recorder::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut engine = quickjs::QuickJs::new(&limits(), recorder.clone(), stop).unwrap();
        let (tx, rx) = mpsc::channel::<Input>();
        drop(tx);
        let reason = drive(
            &mut engine,
            &script("onmessage = () => {};"),
            &Inbox::new(rx),
            &*recorder,
        );
        assert_eq!(reason, WorkerExitReason::Terminated);
    }
}
