//! The QuickJS engine (rquickjs): one runtime and one context per worker, the prelude
//! (`prelude.js`) for the worker's world, and the engine-level limits.
//!
//! Limits enforced here, in the engine:
//! * memory: `Runtime::set_memory_limit` bounds the JavaScript heap; an allocation past it
//!   throws `out of memory`, which ends the worker with `memory_limit`;
//! * stack: `Runtime::set_max_stack_size` (a deep recursion is an ordinary `RangeError`);
//! * CPU: an interrupt handler reads this thread's CPU clock and interrupts the script past
//!   its budget (QuickJS calls it every few thousand bytecode instructions, also inside
//!   `try`/`catch`-swallowing loops: the interrupt is uncatchable). The same handler stops the
//!   script when the broker goes away.
//!
//! A script that keeps catching its own out-of-memory errors can spin far past its CPU budget
//! between interrupt checks (measured: 4.6 s of CPU against a 500 ms budget); the executor's
//! CPU watchdog thread (`super::watchdog`), RLIMIT_CPU ([`super::sandbox`]) and the broker's
//! wall-clock kill at lease end cover that.
//!
//! Only the host functions defined in `install_host` exist: no filesystem, network, module
//! loader or `std`/`os` modules are compiled in or exposed. `importScripts` evaluates only
//! sources the client supplied with the spawn (`Script::imports`).
//!
//! Message data is structured-clone bytes both ways: `clone-codec.js`, the same file the
//! extension uses in the page, encodes and decodes them inside the worker's own heap, so a
//! large message is bounded by the worker's memory limit, not the executor's.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use foresight_shared::limits::WORKER_MAX_MESSAGE;
use foresight_shared::protocol::broker::WorkerExitReason;
use foresight_shared::protocol::executor::{ConsoleLevel, ExecutorLimits, FromExecutor};
use rquickjs::context::EvalOptions;
use rquickjs::{
    Context, Ctx, Exception, Function, Module, Object, Persistent, Promise, Runtime, TypedArray,
    Value,
};

use super::engine::{Engine, Outbox, Script, Step};
use super::modules::{SuppliedModules, UrlResolver, declare_module};

const PRELUDE: &str = include_str!("prelude.js");

/// The structured-clone codec, shared with the extension's MAIN-world script.
const CODEC: &str = include_str!("../../../extension/src/clone-codec.js");

/// Most bytes `crypto.getRandomValues` fills in one call (the Web Crypto quota).
const MAX_RANDOM_BYTES: usize = 65_536;

/// The smallest heap a worker is given, whatever its lease says: QuickJS's own context and
/// the prelude need about this much, and 0 would mean "unlimited" to QuickJS.
pub const MIN_HEAP_BYTES: u64 = 1024 * 1024;

/// Longest console line or error message forwarded to the broker.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// A `null` exception (QuickJS throws one when it cannot even allocate the error object)
/// counts as out of memory when the heap is at least this full, in percent.
const TIGHT_HEAP_PERCENT: i64 = 90;

/// Longest wait for a timer the event loop is asked to do (a day; `setTimeout(f, 1e300)` must
/// not overflow an `Instant`).
const MAX_TIMER_WAIT: Duration = Duration::from_secs(86_400);

/// This thread's CPU time so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        // Never seen on Linux; RLIMIT_CPU still bounds the process if it happens.
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// State shared by the engine, its host functions and its interrupt handler.
pub(crate) struct State {
    outbox: Rc<dyn Outbox>,
    /// Origin of `host.now()`, the clock timers run on: when the limits were applied, which
    /// is when the worker starts.
    epoch: Cell<Instant>,
    pub(crate) script: RefCell<Script>,
    heap_limit: Cell<u64>,
    cpu_start: Cell<Duration>,
    cpu_budget: Cell<Duration>,
    /// Set by the input thread when the broker closes our stdin or says `terminate`.
    stop: Arc<AtomicBool>,
    cpu_exceeded: Cell<bool>,
    out_of_memory: Cell<bool>,
    closed: Cell<bool>,
    /// A module worker's top level is being evaluated: a rejection now is reported as the
    /// worker's error event, not as an unhandled rejection.
    evaluating_module: Cell<bool>,
    /// Run at the next interrupt check ([`QuickJs::on_first_interrupt`]).
    first_interrupt: Cell<Option<Box<dyn FnOnce()>>>,
}

impl State {
    fn cpu_spent(&self) -> bool {
        thread_cpu_time().saturating_sub(self.cpu_start.get()) > self.cpu_budget.get()
    }

    /// The interrupt handler's question: must the running script stop now?
    fn should_interrupt(&self) -> bool {
        if let Some(hook) = self.first_interrupt.take() {
            hook();
        }
        if self.stop.load(Ordering::Relaxed) {
            return true;
        }
        if self.cpu_spent() {
            self.cpu_exceeded.set(true);
            return true;
        }
        false
    }

    /// The reason the worker must end now, if any; checked after every piece of JavaScript.
    fn fatal(&self) -> Option<WorkerExitReason> {
        if self.stop.load(Ordering::Relaxed) {
            Some(WorkerExitReason::Terminated)
        } else if self.cpu_exceeded.get() {
            Some(WorkerExitReason::CpuLimit)
        } else if self.out_of_memory.get() {
            Some(WorkerExitReason::MemoryLimit)
        } else {
            None
        }
    }

    fn now_ms(&self) -> f64 {
        self.epoch.get().elapsed().as_secs_f64() * 1000.0
    }

    fn send_error(&self, message: String, lineno: Option<u32>) {
        self.outbox.send(FromExecutor::Error {
            message: truncate(message),
            lineno,
        });
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_TEXT_BYTES {
        let mut cut = MAX_TEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("... (truncated)");
    }
    text
}

/// The QuickJS implementation of [`Engine`].
pub struct QuickJs {
    // Field order is drop order: JavaScript values before the context before the runtime.
    internals: Option<Persistent<Object<'static>>>,
    context: Context,
    runtime: Runtime,
    state: Rc<State>,
}

impl QuickJs {
    /// A fresh runtime with `limits` applied. `stop` is raised by whoever reads the input to
    /// make a running script stop at its next interrupt check.
    pub fn new(
        limits: &ExecutorLimits,
        outbox: Rc<dyn Outbox>,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, String> {
        let engine = Self::prepare(outbox, stop)?;
        engine.limit(limits);
        Ok(engine)
    }

    /// A runtime with the worker's world installed (codec and prelude, our own code) but no
    /// script and no limits yet: what a spare executor does while it waits for its `start`,
    /// so that starting a worker costs only its own script. [`QuickJs::limit`] must follow
    /// before any page code runs.
    pub fn prepare(outbox: Rc<dyn Outbox>, stop: Arc<AtomicBool>) -> Result<Self, String> {
        let runtime = Runtime::new().map_err(|e| format!("cannot create a runtime: {e}"))?;
        let context =
            Context::full(&runtime).map_err(|e| format!("cannot create a context: {e}"))?;
        let state = Rc::new(State {
            outbox,
            epoch: Cell::new(Instant::now()),
            script: RefCell::new(Script::default()),
            heap_limit: Cell::new(u64::MAX),
            cpu_start: Cell::new(thread_cpu_time()),
            cpu_budget: Cell::new(Duration::MAX),
            stop,
            cpu_exceeded: Cell::new(false),
            out_of_memory: Cell::new(false),
            closed: Cell::new(false),
            evaluating_module: Cell::new(false),
            first_interrupt: Cell::new(None),
        });
        // Module workers import only what the client supplied: no files, no network.
        runtime.set_loader(UrlResolver, SuppliedModules(state.clone()));
        let handler_state = state.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || handler_state.should_interrupt())));
        let tracker_state = state.clone();
        runtime.set_host_promise_rejection_tracker(Some(Box::new(
            move |_ctx, _promise, reason, is_handled| {
                if !is_handled && !tracker_state.evaluating_module.get() {
                    // Browsers log these in the worker's console; they are not error events.
                    tracker_state.outbox.send(FromExecutor::Console {
                        level: ConsoleLevel::Error,
                        text: truncate(format!("Uncaught (in promise) {}", describe(&reason))),
                    });
                }
            },
        )));
        let mut engine = Self {
            internals: None,
            context,
            runtime,
            state,
        };
        engine
            .install()
            .map_err(|reason| format!("cannot install the worker's world: {reason:?}"))?;
        Ok(engine)
    }

    /// Applies the lease's limits; the CPU budget and the worker's clock start now.
    pub fn limit(&self, limits: &ExecutorLimits) {
        let heap_limit = limits.memory_bytes.max(MIN_HEAP_BYTES);
        self.runtime
            .set_memory_limit(usize::try_from(heap_limit).unwrap_or(usize::MAX));
        self.runtime
            .set_max_stack_size(usize::try_from(limits.stack_bytes).unwrap_or(usize::MAX));
        self.state.heap_limit.set(heap_limit);
        self.state
            .cpu_budget
            .set(Duration::from_millis(limits.cpu_ms));
        self.state.cpu_start.set(thread_cpu_time());
        self.state.epoch.set(Instant::now());
    }

    /// Runs `hook` at the engine's next interrupt check, that is once a script has run for a
    /// few thousand instructions (never, if none does): work that must not wait for a long
    /// top level to end, but that a short one should not pay for.
    pub fn on_first_interrupt(&self, hook: Box<dyn FnOnce()>) {
        self.state.first_interrupt.set(Some(hook));
    }

    /// Runs `f` with the context and the prelude's entry points.
    fn with_internals<R>(
        &self,
        f: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> R,
        missing: R,
    ) -> R {
        let Some(internals) = self.internals.clone() else {
            return missing;
        };
        self.context.with(|ctx| match internals.restore(&ctx) {
            Ok(internals) => f(&ctx, &internals),
            Err(_) => missing,
        })
    }

    /// Calls the prelude's entry point `name` with `args`, reporting what it throws.
    fn call_internal<A>(&self, name: &str, args: A)
    where
        A: for<'js> rquickjs::function::IntoArgs<'js>,
    {
        let state = self.state.clone();
        self.with_internals(
            |ctx, internals| {
                let result = internals
                    .get::<_, Function>(name)
                    .and_then(|f| f.call::<_, ()>(args));
                absorb(&state, ctx, Some(internals), result);
            },
            (),
        );
    }

    /// Runs queued promise jobs (microtasks) until none is left or the worker must stop.
    fn drain_jobs(&self) {
        while self.state.fatal().is_none() {
            match self.runtime.execute_pending_job() {
                Ok(true) => {}
                Ok(false) => break,
                Err(job) => {
                    let state = self.state.clone();
                    job.0.with(|ctx| {
                        let exception = ctx.catch();
                        report_exception(&state, &ctx, None, exception);
                    });
                }
            }
        }
    }

    /// What follows a task: its microtasks, then the verdict.
    fn settle(&self) -> Step {
        self.drain_jobs();
        if let Some(reason) = self.state.fatal() {
            return Step::Exit(reason);
        }
        // A script of many short callbacks may finish each between interrupt checks.
        if self.state.cpu_spent() {
            return Step::Exit(WorkerExitReason::CpuLimit);
        }
        if self.state.closed.get() {
            return Step::Exit(WorkerExitReason::Closed);
        }
        Step::Continue
    }

    fn install(&mut self) -> Result<(), WorkerExitReason> {
        let state = self.state.clone();
        let installed = self.context.with(|ctx| {
            let result = install_host(&state, &ctx).and_then(|host| {
                let mut options = EvalOptions::default();
                options.filename = Some("foresight:clone-codec.js".to_string());
                ctx.eval_with_options::<(), _>(CODEC, options)?;
                let globals = ctx.globals();
                let make_codec: Function = globals.get("__foresightCloneCodec")?;
                globals.remove("__foresightCloneCodec")?;
                let mut options = EvalOptions::default();
                options.filename = Some("foresight:prelude.js".to_string());
                let prelude: Function = ctx.eval_with_options(PRELUDE, options)?;
                let internals: Object = prelude.call((host, make_codec))?;
                Ok(Persistent::save(&ctx, internals))
            });
            match result {
                Ok(internals) => Some(internals),
                Err(e) => {
                    absorb(&state, &ctx, None, Err(e));
                    None
                }
            }
        });
        match installed {
            Some(internals) => {
                self.internals = Some(internals);
                Ok(())
            }
            None => Err(self.state.fatal().unwrap_or(WorkerExitReason::Crashed)),
        }
    }
}

impl Engine for QuickJs {
    fn start(&mut self, script: &Script) -> Step {
        *self.state.script.borrow_mut() = script.clone();
        self.call_internal("configure", ());
        if let Some(reason) = self.state.fatal() {
            return Step::Exit(reason);
        }
        let state = self.state.clone();
        let source = script.source.as_str();
        // QuickJS wants a C string; a NUL in a URL is no URL anyway.
        let filename = script.url.replace('\0', "%00");
        let module = script.module;
        self.with_internals(
            |ctx, internals| {
                if module {
                    // Errors in the module graph or its top level settle this promise; the
                    // prelude reports them as the worker's error event.
                    state.evaluating_module.set(true);
                    let evaluated = declare_module(ctx, &filename, source)
                        .and_then(Module::eval)
                        .map(|(_, promise)| promise);
                    state.evaluating_module.set(false);
                    let result = evaluated.and_then(|promise: Promise| {
                        internals
                            .get::<_, Function>("watchModule")
                            .and_then(|watch| watch.call::<_, ()>((promise,)))
                    });
                    absorb(&state, ctx, Some(internals), result);
                    return;
                }
                let mut options = EvalOptions::default();
                // A classic worker script: sloppy mode, global scope.
                options.strict = false;
                options.filename = Some(filename);
                let result = ctx.eval_with_options::<(), _>(source, options);
                absorb(&state, ctx, Some(internals), result);
            },
            (),
        );
        self.settle()
    }

    fn deliver(&mut self, data: &[u8]) -> Step {
        // The bytes are copied into the worker's heap and decoded there by the codec, so the
        // value is allocated on (and limited by) the worker's own heap.
        let state = self.state.clone();
        self.with_internals(
            |ctx, internals| {
                let result = TypedArray::<u8>::new_copy(ctx.clone(), data).and_then(|bytes| {
                    internals
                        .get::<_, Function>("dispatchMessage")
                        .and_then(|f| f.call::<_, ()>((bytes,)))
                });
                absorb(&state, ctx, Some(internals), result);
            },
            (),
        );
        self.settle()
    }

    fn next_timer(&mut self) -> Option<Instant> {
        let state = self.state.clone();
        let due_ms = self.with_internals(
            |ctx, internals| {
                let result = internals
                    .get::<_, Function>("nextTimer")
                    .and_then(|f| f.call::<_, f64>(()));
                match result {
                    Ok(due) => Some(due),
                    Err(e) => {
                        absorb(&state, ctx, Some(internals), Err(e));
                        None
                    }
                }
            },
            None,
        )?;
        // -1 means no timer; NaN cannot happen, but must not become a wait either.
        if due_ms.is_nan() || due_ms < 0.0 {
            return None;
        }
        let wait = Duration::from_secs_f64((due_ms / 1000.0).min(MAX_TIMER_WAIT.as_secs_f64()));
        Some(self.state.epoch.get() + wait)
    }

    fn run_timers(&mut self, now: Instant) -> Step {
        let now_ms = now
            .saturating_duration_since(self.state.epoch.get())
            .as_secs_f64()
            * 1000.0;
        let state = self.state.clone();
        let due: Vec<f64> = self.with_internals(
            |ctx, internals| {
                let result = internals
                    .get::<_, Function>("dueTimers")
                    .and_then(|f| f.call::<_, Vec<f64>>((now_ms,)));
                match result {
                    Ok(ids) => ids,
                    Err(e) => {
                        absorb(&state, ctx, Some(internals), Err(e));
                        Vec::new()
                    }
                }
            },
            Vec::new(),
        );
        for id in due {
            self.call_internal("fireTimer", (id,));
            let step = self.settle();
            if step != Step::Continue {
                return step;
            }
        }
        self.settle()
    }
}

/// Defines the `host` object the prelude builds the worker's world on.
fn install_host<'js>(state: &Rc<State>, ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let host = Object::new(ctx.clone())?;

    let s = state.clone();
    host.set(
        "post",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>| {
                // SAFETY: the slice is copied out at once, before any JavaScript runs.
                let data = unsafe { bytes.as_bytes() }.map(<[u8]>::to_vec);
                let Some(data) = data else {
                    return Err(Exception::throw_type(&ctx, "postMessage: detached buffer"));
                };
                if data.len() > WORKER_MAX_MESSAGE {
                    return Err(Exception::throw_range(
                        &ctx,
                        &format!(
                            "postMessage: the message is {} bytes, over the {WORKER_MAX_MESSAGE} byte limit",
                            data.len()
                        ),
                    ));
                }
                s.outbox.post(data);
                Ok(())
            },
        )?,
    )?;
    host.set("maxMessageBytes", WORKER_MAX_MESSAGE as f64)?;

    host.set(
        "utf8Encode",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, text: String| {
            TypedArray::<u8>::new(ctx, text.into_bytes())
        })?,
    )?;

    host.set(
        "utf8Decode",
        Function::new(
            ctx.clone(),
            move |bytes: TypedArray<'js, u8>, fatal: rquickjs::function::Opt<bool>| {
                // SAFETY: the slice is read at once, before any JavaScript runs.
                let data = unsafe { bytes.as_bytes() }.unwrap_or(&[]);
                if fatal.0.unwrap_or(false) {
                    std::str::from_utf8(data).ok().map(str::to_owned)
                } else {
                    Some(String::from_utf8_lossy(data).into_owned())
                }
            },
        )?,
    )?;

    host.set(
        "random",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, n: usize| {
            let mut buf = vec![0u8; n.min(MAX_RANDOM_BYTES)];
            fill_random(&mut buf);
            TypedArray::<u8>::new(ctx, buf)
        })?,
    )?;

    let s = state.clone();
    host.set(
        "imports",
        Function::new(ctx.clone(), move || {
            s.script
                .borrow()
                .imports
                .iter()
                .map(|i| vec![i.url.clone(), i.source.clone()])
                .collect::<Vec<_>>()
        })?,
    )?;

    let s = state.clone();
    host.set(
        "isModule",
        Function::new(ctx.clone(), move || s.script.borrow().module)?,
    )?;

    let s = state.clone();
    host.set(
        "name",
        Function::new(ctx.clone(), move || s.script.borrow().name.clone())?,
    )?;

    host.set(
        "evalScript",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, source: String, url: String| -> rquickjs::Result<()> {
                let mut options = EvalOptions::default();
                options.strict = false;
                options.filename = Some(url.replace('\0', "%00"));
                // An exception stays pending and reaches importScripts' caller.
                ctx.eval_with_options::<(), _>(source, options)
            },
        )?,
    )?;

    let s = state.clone();
    host.set(
        "console",
        Function::new(ctx.clone(), move |level: String, text: String| {
            let level = match level.as_str() {
                "log" => ConsoleLevel::Log,
                "info" => ConsoleLevel::Info,
                "warn" => ConsoleLevel::Warn,
                "error" => ConsoleLevel::Error,
                "debug" => ConsoleLevel::Debug,
                _ => ConsoleLevel::Unknown,
            };
            s.outbox.send(FromExecutor::Console {
                level,
                text: truncate(text),
            });
        })?,
    )?;

    let s = state.clone();
    host.set(
        "error",
        Function::new(ctx.clone(), move |message: String, lineno: f64| {
            let lineno = (lineno >= 1.0 && lineno <= f64::from(u32::MAX)).then_some(lineno as u32);
            s.send_error(message, lineno);
        })?,
    )?;

    let s = state.clone();
    host.set(
        "isOutOfMemory",
        Function::new(ctx.clone(), move |e: Value<'js>| {
            let oom = is_out_of_memory(&s, &e);
            if oom {
                s.out_of_memory.set(true);
            }
            oom
        })?,
    )?;

    let s = state.clone();
    host.set(
        "close",
        Function::new(ctx.clone(), move || s.closed.set(true))?,
    )?;

    let s = state.clone();
    host.set("now", Function::new(ctx.clone(), move || s.now_ms())?)?;

    let s = state.clone();
    host.set(
        "scriptUrl",
        Function::new(ctx.clone(), move || s.script.borrow().url.clone())?,
    )?;

    Ok(host)
}

/// Fills `buf` from the kernel's CSPRNG.
fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: writes at most rest.len() bytes into memory we own.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            // Never seen on Linux >= 3.17; fall back to something not constant.
            let seed = thread_cpu_time().subsec_nanos();
            for (i, b) in rest.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2_654_435_761).wrapping_add(i as u32) >> 13) as u8;
            }
            return;
        }
        filled += n as usize;
    }
}

/// Whether an exception means the heap is exhausted.
fn is_out_of_memory(state: &State, e: &Value<'_>) -> bool {
    if let Some(obj) = e.as_object()
        && let Ok(message) = obj.get::<_, String>("message")
    {
        return message == "out of memory";
    }
    if e.is_null() {
        let limit = i64::try_from(state.heap_limit.get()).unwrap_or(i64::MAX);
        return heap_in_use(e.ctx()).saturating_mul(100)
            >= limit.saturating_mul(TIGHT_HEAP_PERCENT);
    }
    false
}

/// Bytes QuickJS has allocated. rquickjs only offers this on `Runtime`, whose lock the caller
/// already holds inside `Context::with`, so this asks QuickJS directly.
fn heap_in_use(ctx: &Ctx<'_>) -> i64 {
    let mut usage = std::mem::MaybeUninit::<rquickjs::qjs::JSMemoryUsage>::zeroed();
    // SAFETY: the context is live for the duration of the borrow, so is its runtime;
    // JS_ComputeMemoryUsage only reads the runtime and fills the struct we own.
    unsafe {
        let rt = rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
        rquickjs::qjs::JS_ComputeMemoryUsage(rt, usage.as_mut_ptr());
        usage.assume_init().malloc_size
    }
}

/// Deals with the outcome of JavaScript the executor called: nothing on success; on an
/// exception, stops for the fatal ones (interrupt, out of memory) and reports the rest.
fn absorb<'js>(
    state: &State,
    ctx: &Ctx<'js>,
    internals: Option<&Object<'js>>,
    result: rquickjs::Result<()>,
) {
    match result {
        Ok(()) => {}
        Err(rquickjs::Error::Exception) => {
            let exception = ctx.catch();
            report_exception(state, ctx, internals, exception);
        }
        Err(other) => {
            // A conversion or engine error, not the script's: still the page should know.
            if state.fatal().is_none() {
                state.send_error(format!("worker engine error: {other}"), None);
            }
        }
    }
}

fn report_exception<'js>(
    state: &State,
    ctx: &Ctx<'js>,
    internals: Option<&Object<'js>>,
    exception: Value<'js>,
) {
    if state.fatal().is_some() {
        // The uncatchable "interrupted" error: the verdict is already recorded.
        return;
    }
    if is_out_of_memory(state, &exception) {
        state.out_of_memory.set(true);
        return;
    }
    let reported = internals.map(|internals| {
        internals
            .get::<_, Function>("report")
            .and_then(|report| report.call::<_, ()>((exception.clone(),)))
    });
    match reported {
        Some(Ok(())) => {}
        Some(Err(rquickjs::Error::Exception)) => {
            let again = ctx.catch();
            if state.fatal().is_none() {
                if is_out_of_memory(state, &again) {
                    state.out_of_memory.set(true);
                } else {
                    state.send_error(format!("Uncaught {}", describe(&exception)), None);
                }
            }
        }
        Some(Err(_)) | None => {
            let lineno = exception
                .as_object()
                .and_then(|o| o.get::<_, i32>("lineNumber").ok())
                .and_then(|n| u32::try_from(n).ok());
            state.send_error(format!("Uncaught {}", describe(&exception)), lineno);
        }
    }
}

/// `Name: message` for errors, a short rendering for anything else, without running any of
/// the script's code (no `toString` calls).
fn describe(value: &Value<'_>) -> String {
    if let Some(obj) = value.as_object() {
        let name = obj.get::<_, String>("name").ok();
        let message = obj.get::<_, String>("message").ok();
        return match (name, message) {
            (Some(name), Some(message)) => format!("{name}: {message}"),
            (None, Some(message)) => message,
            _ => "[object]".to_string(),
        };
    }
    if let Some(s) = value.as_string() {
        return s.to_string().unwrap_or_default();
    }
    if let Some(n) = value.as_number() {
        return n.to_string();
    }
    if let Some(b) = value.as_bool() {
        return b.to_string();
    }
    value.type_name().to_string()
}

#[cfg(test)]
mod tests;
