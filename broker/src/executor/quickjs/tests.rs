//! The QuickJS engine's tests: the worker's world, message data, limits, modules.

use super::*;
use foresight_shared::protocol::broker::ScriptSource;
use foresight_shared::sclone::{self, CloneValue};
use serde_json::json;

/// What the engine sent: a control message, or `postMessage` data (decoded).
#[derive(Debug, PartialEq)]
enum Rec {
    Control(FromExecutor),
    Data(CloneValue),
}

#[derive(Default)]
struct Recorder(RefCell<Vec<Rec>>);

impl Outbox for Recorder {
    fn send(&self, message: FromExecutor) {
        self.0.borrow_mut().push(Rec::Control(message));
    }
    fn post(&self, data: Vec<u8>) {
        let value = sclone::decode(&data).expect("the worker posts valid bytes");
        self.0.borrow_mut().push(Rec::Data(value));
    }
}

impl Recorder {
    fn take(&self) -> Vec<Rec> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
    fn values(&self) -> Vec<CloneValue> {
        self.take()
            .into_iter()
            .filter_map(|m| match m {
                Rec::Data(v) => Some(v),
                Rec::Control(_) => None,
            })
            .collect()
    }
    fn messages(&self) -> Vec<serde_json::Value> {
        self.values()
            .into_iter()
            .map(|v| v.to_json().expect("JSON-like data"))
            .collect()
    }
}

fn script(url: &str, source: &str) -> Script {
    Script {
        url: url.into(),
        source: source.into(),
        ..Script::default()
    }
}

fn enc(v: serde_json::Value) -> Vec<u8> {
    sclone::encode_json(&v)
}

fn data(v: serde_json::Value) -> Rec {
    Rec::Data(sclone::decode(&sclone::encode_json(&v)).unwrap())
}

fn engine(cpu_ms: u64, memory_bytes: u64) -> (QuickJs, Rc<Recorder>) {
    let recorder = Rc::new(Recorder::default());
    let limits = ExecutorLimits {
        cpu_ms,
        memory_bytes,
        stack_bytes: 1024 * 1024,
    };
    let engine =
        QuickJs::new(&limits, recorder.clone(), Arc::new(AtomicBool::new(false))).expect("engine");
    (engine, recorder)
}

fn roomy() -> (QuickJs, Rc<Recorder>) {
    engine(10_000, 64 * 1024 * 1024)
}

/// Runs the timers until none is left (tests only: timers here are all short).
fn run_all_timers(e: &mut QuickJs) -> Step {
    while let Some(due) = e.next_timer() {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let step = e.run_timers(Instant::now());
        if step != Step::Continue {
            return step;
        }
    }
    Step::Continue
}

#[test]
fn echo_in_order() {
    let (mut e, out) = roomy();
    assert_eq!(
        e.start(&script("w.js", "onmessage = e => postMessage(e.data * 2);")),
        Step::Continue
    );
    for i in 0..5 {
        assert_eq!(e.deliver(&enc(json!(i))), Step::Continue);
    }
    assert_eq!(
        out.messages(),
        vec![json!(0), json!(2), json!(4), json!(6), json!(8)]
    );
}

#[test]
fn listeners_events_and_self() {
    let (mut e, out) = roomy();
    let src = r#"
        function onmessage(e) { postMessage(['decl', e.type, e.data]); }
        self.addEventListener('message', function (e) { postMessage(['l1', e.data.x]); });
        const l2 = e => postMessage('l2');
        addEventListener('message', l2);
        removeEventListener('message', l2);
        postMessage(typeof self === 'object' && self === globalThis);
    "#;
    assert_eq!(e.start(&script("w.js", src)), Step::Continue);
    assert_eq!(e.deliver(&enc(json!({"x": 1}))), Step::Continue);
    assert_eq!(
        out.messages(),
        vec![
            json!(true),
            json!(["decl", "message", {"x": 1}]),
            json!(["l1", 1])
        ]
    );
}

#[test]
fn timers_promises_and_microtasks_run_in_order() {
    let (mut e, out) = roomy();
    let src = r#"
        const log = [];
        setTimeout(() => { log.push('t20'); postMessage(log); }, 20);
        setTimeout((a, b) => log.push('t0:' + a + b), 0, 'x', 'y');
        const cancelled = setTimeout(() => log.push('never'), 5);
        clearTimeout(cancelled);
        let n = 0;
        const iv = setInterval(() => { log.push('iv' + n); if (++n === 3) clearInterval(iv); }, 1);
        Promise.resolve().then(() => log.push('promise'));
        queueMicrotask(() => log.push('micro'));
        (async () => { await null; log.push('async'); })();
        log.push('top');
    "#;
    assert_eq!(e.start(&script("w.js", src)), Step::Continue);
    assert_eq!(run_all_timers(&mut e), Step::Continue);
    let messages = out.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let log: Vec<String> = serde_json::from_value(messages[0].clone()).unwrap();
    assert_eq!(&log[..4], ["top", "promise", "micro", "async"]);
    assert!(log.contains(&"t0:xy".to_string()));
    assert_eq!(
        log.iter().filter(|s| s.starts_with("iv")).count(),
        3,
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("t20"));
    assert!(!log.contains(&"never".to_string()));
}

#[test]
fn uncaught_errors_are_reported_and_the_worker_lives_on() {
    let (mut e, out) = roomy();
    let src = "onmessage = e => { if (e.data === 'boom') throw new TypeError('bad ' + e.data); postMessage('ok'); };\nnull.x;";
    assert_eq!(e.start(&script("https://x/w.js", src)), Step::Continue);
    let first = out.take();
    assert!(
        matches!(&first[..], [Rec::Control(FromExecutor::Error { message, lineno: Some(2) })]
            if message.contains("TypeError")),
        "{first:?}"
    );
    assert_eq!(e.deliver(&enc(json!("boom"))), Step::Continue);
    assert_eq!(e.deliver(&enc(json!("fine"))), Step::Continue);
    let rest = out.take();
    assert!(
        matches!(&rest[..], [
            Rec::Control(FromExecutor::Error { message, lineno: Some(1) }),
            Rec::Data(CloneValue::String(data)),
        ] if message == "Uncaught TypeError: bad boom" && data == "ok"),
        "{rest:?}"
    );
}

#[test]
fn the_worker_can_handle_its_own_errors() {
    let (mut e, out) = roomy();
    let src = r#"
        onerror = (msg) => { postMessage('onerror: ' + msg); return true; };
        setTimeout(() => { throw new Error('late'); }, 0);
    "#;
    assert_eq!(e.start(&script("w.js", src)), Step::Continue);
    assert_eq!(run_all_timers(&mut e), Step::Continue);
    assert_eq!(
        out.take(),
        vec![data(json!("onerror: Uncaught Error: late"))]
    );
}

#[test]
fn console_and_close() {
    let (mut e, out) = roomy();
    let src = "console.log('a', 1, {b: 2}); console.warn(new Error('w').message); close(); postMessage('after close, same task');";
    assert_eq!(
        e.start(&script("w.js", src)),
        Step::Exit(WorkerExitReason::Closed)
    );
    assert_eq!(
        out.take(),
        vec![
            Rec::Control(FromExecutor::Console {
                level: ConsoleLevel::Log,
                text: "a 1 {\"b\":2}".into()
            }),
            Rec::Control(FromExecutor::Console {
                level: ConsoleLevel::Warn,
                text: "w".into()
            }),
            data(json!("after close, same task")),
        ]
    );
}

#[test]
fn no_host_capabilities_leak_into_the_script() {
    let (mut e, out) = roomy();
    let src = r#"
        postMessage([typeof host, typeof internals, typeof require, typeof std, typeof os,
                     typeof fetch, typeof XMLHttpRequest, typeof WebSocket]);
        try { importScripts('x.js'); } catch (e) { postMessage([e.name, e.code, e.message]); }
    "#;
    assert_eq!(
        e.start(&script("https://example.test/w.js", src)),
        Step::Continue
    );
    let messages = out.messages();
    assert_eq!(messages[0], json!(vec!["undefined"; 8]));
    assert_eq!(
        messages[1],
        json!([
            "NetworkError",
            19,
            "Failed to execute 'importScripts' on 'WorkerGlobalScope': The script at 'https://example.test/x.js' failed to load."
        ])
    );
}

#[test]
fn what_cannot_be_cloned_throws_a_data_clone_error_in_the_worker() {
    let (mut e, out) = roomy();
    let src = r#"
        const a = {}; a.self = a;
        try { postMessage(() => 1); } catch (e) { postMessage('function: ' + e.name); }
        try { postMessage({ p: Promise.resolve() }); } catch (e) { postMessage('promise: ' + e.name); }
        try { postMessage('x'.repeat(9 * 1024 * 1024)); } catch (e) { postMessage('huge: ' + e.name); }
        const buf = new ArrayBuffer(8);
        try { postMessage(1, [buf, buf]); } catch (e) { postMessage('twice: ' + e.name); }
        postMessage(a);
    "#;
    assert_eq!(e.start(&script("w.js", src)), Step::Continue);
    let values = out.values();
    let texts: Vec<_> = values[..4].iter().map(|v| v.to_json().unwrap()).collect();
    assert_eq!(
        texts,
        vec![
            json!("function: DataCloneError"),
            json!("promise: DataCloneError"),
            json!("huge: DataCloneError"),
            json!("twice: DataCloneError"),
        ]
    );
    assert_eq!(
        values[4],
        CloneValue::Object(vec![("self".into(), CloneValue::Ref(0))]),
        "cycles cross as references"
    );
}

#[test]
fn busy_loop_hits_the_cpu_limit() {
    let (mut e, _out) = engine(100, 64 * 1024 * 1024);
    assert_eq!(
        e.start(&script(
            "w.js",
            "while (true) { try { for(;;){} } catch (e) {} }"
        )),
        Step::Exit(WorkerExitReason::CpuLimit)
    );
}

#[test]
fn busy_callback_hits_the_cpu_limit() {
    let (mut e, _out) = engine(100, 64 * 1024 * 1024);
    assert_eq!(
        e.start(&script("w.js", "onmessage = () => { for(;;){} };")),
        Step::Continue
    );
    assert_eq!(
        e.deliver(&enc(json!(1))),
        Step::Exit(WorkerExitReason::CpuLimit)
    );
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let (mut e, _out) = engine(10_000, 8 * 1024 * 1024);
    let step = e.start(&script(
        "w.js",
        "const a = []; while (true) a.push(new Array(100000).fill(1.5));",
    ));
    assert_eq!(step, Step::Exit(WorkerExitReason::MemoryLimit));
}

#[test]
fn memory_bomb_in_a_callback_hits_the_memory_limit() {
    let (mut e, out) = engine(10_000, 8 * 1024 * 1024);
    // The array is local: it is freed as the error unwinds, so the report path has memory
    // again and must still recognise the error for what it was.
    let src = "onmessage = () => { const a = []; while (true) a.push(new Array(1e5).fill(0.5)); };";
    assert_eq!(e.start(&script("w.js", src)), Step::Continue);
    let step = e.deliver(&enc(json!(null)));
    assert_eq!(
        step,
        Step::Exit(WorkerExitReason::MemoryLimit),
        "{:?}",
        out.take()
    );
}

#[test]
fn deep_recursion_is_an_ordinary_error() {
    let (mut e, out) = roomy();
    assert_eq!(
        e.start(&script("w.js", "function f() { return f() + 1; } f();")),
        Step::Continue
    );
    let errors = out.take();
    assert!(
        matches!(&errors[..], [Rec::Control(FromExecutor::Error { message, .. })] if message.contains("RangeError")),
        "{errors:?}"
    );
}

#[test]
fn stop_flag_interrupts_a_running_script() {
    let (mut e, _out) = engine(60_000, 64 * 1024 * 1024);
    e.state.stop.store(true, Ordering::SeqCst);
    assert_eq!(
        e.start(&script("w.js", "for(;;){}")),
        Step::Exit(WorkerExitReason::Terminated)
    );
}

#[test]
fn unhandled_rejections_go_to_the_console() {
    let (mut e, out) = roomy();
    assert_eq!(
        e.start(&script("w.js", "Promise.reject(new Error('nope'));")),
        Step::Continue
    );
    let got = out.take();
    assert!(
        matches!(&got[..], [Rec::Control(FromExecutor::Console { level: ConsoleLevel::Error, text })]
            if text.contains("Uncaught (in promise) Error: nope")),
        "{got:?}"
    );
}

#[test]
fn structured_clone_data_round_trips_through_the_worker() {
    let (mut e, out) = roomy();
    // The worker echoes what it gets, plus its own structuredClone of it, and checks the
    // types arrived as themselves.
    let src = r#"
        onmessage = (e) => {
            const d = e.data;
            const c = structuredClone(d);
            postMessage([
                d.m instanceof Map && d.m.get('k') === 1,
                d.s instanceof Set && d.s.has(2),
                d.t instanceof Float64Array && d.t[1] === 2.5,
                d.v.buffer === d.b,
                d.cyc.self === d.cyc,
                Object.is(d.nz, -0) && Number.isNaN(d.nan) && d.u === undefined && 'u' in d,
                d.big === 2n ** 70n,
                d.date instanceof Date && d.date.getTime() === 5,
                d.re instanceof RegExp && d.re.flags === 'gi',
                c.cyc.self === c.cyc && c.m !== d.m,
            ]);
        };
    "#;
    assert_eq!(e.start(&script("w.js", src)), Step::Continue);
    // Built by the same codec in a second engine playing the page.
    let page_src = r#"
        const b = new ArrayBuffer(16);
        const d = { m: new Map([['k', 1]]), s: new Set([2]), t: new Float64Array([1, 2.5]),
                    b, v: new Uint8Array(b, 4, 4), nz: -0, nan: NaN, u: undefined,
                    big: 2n ** 70n, date: new Date(5), re: /x/gi, cyc: {} };
        d.cyc.self = d.cyc;
        postMessage(d);
    "#;
    let raw = Rc::new(RawRecorder::default());
    let mut page = QuickJs::new(
        &ExecutorLimits {
            cpu_ms: 10_000,
            memory_bytes: 64 * 1024 * 1024,
            stack_bytes: 1024 * 1024,
        },
        raw.clone(),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    assert_eq!(page.start(&script("page.js", page_src)), Step::Continue);
    let bytes = raw.0.borrow_mut().remove(0);
    assert_eq!(e.deliver(&bytes), Step::Continue);
    assert_eq!(out.messages(), vec![json!(vec![true; 10])]);
}

#[derive(Default)]
struct RawRecorder(RefCell<Vec<Vec<u8>>>);

impl Outbox for RawRecorder {
    fn send(&self, _message: FromExecutor) {}
    fn post(&self, data: Vec<u8>) {
        self.0.borrow_mut().push(data);
    }
}

#[test]
fn transferred_buffers_are_detached_in_the_worker() {
    let (mut e, out) = roomy();
    let src = r#"
        const b = new ArrayBuffer(8);
        new Uint8Array(b)[0] = 7;
        postMessage({ b }, [b]);
        postMessage(b.byteLength);
        const c = new ArrayBuffer(4);
        postMessage(c, { transfer: [c] });
        postMessage(c.byteLength);
    "#;
    assert_eq!(e.start(&script("w.js", src)), Step::Continue);
    let values = out.values();
    assert!(
        matches!(&values[0], CloneValue::Object(f) if matches!(&f[0].1, CloneValue::ArrayBuffer(b) if b[0] == 7))
    );
    assert_eq!(values[1], CloneValue::Number(0.0));
    assert_eq!(values[3], CloneValue::Number(0.0));
}

#[test]
fn undecodable_bytes_fire_messageerror() {
    let (mut e, out) = roomy();
    let src = r#"
        onmessage = (e) => postMessage(['message', e.data]);
        onmessageerror = (e) => postMessage(['messageerror', e.data]);
    "#;
    assert_eq!(e.start(&script("w.js", src)), Step::Continue);
    assert_eq!(e.deliver(&[1, 0x42]), Step::Continue);
    assert_eq!(e.deliver(&enc(json!(1))), Step::Continue);
    assert_eq!(
        out.messages(),
        vec![json!(["messageerror", null]), json!(["message", 1])]
    );
}

#[test]
fn import_scripts_serves_only_the_supplied_sources() {
    let (mut e, out) = roomy();
    let mut s = script(
        "https://example.test/app/w.js",
        r#"
        importScripts('lib/a.js', '../b.js');
        postMessage([a(), b, self.name]);
        try { importScripts('https://evil.test/x.js'); } catch (e) { postMessage(e.name); }
        try { importScripts('a.js'); } catch (e) { postMessage(e.name); }
        try { importScripts('lib/throws.js'); } catch (e) { postMessage(e.message); }
        "#,
    );
    s.name = "calc".into();
    s.imports = vec![
        ScriptSource {
            url: "https://example.test/app/lib/a.js".into(),
            source: "function a() { return 'a'; }".into(),
        },
        ScriptSource {
            url: "https://example.test/b.js".into(),
            source: "var b = 'b';".into(),
        },
        ScriptSource {
            url: "https://example.test/app/lib/throws.js".into(),
            source: "throw new Error('from the import');".into(),
        },
    ];
    assert_eq!(e.start(&s), Step::Continue);
    assert_eq!(
        out.messages(),
        vec![
            json!(["a", "b", "calc"]),
            json!("NetworkError"),
            json!("NetworkError"),
            json!("from the import")
        ]
    );
}

#[test]
fn the_worker_world_has_the_web_platform_basics() {
    let (mut e, out) = roomy();
    let src = r#"
        const enc = new TextEncoder().encode('héllo €');
        const dec = new TextDecoder().decode(enc);
        const r = new Uint32Array(4);
        crypto.getRandomValues(r);
        const t0 = performance.now();
        postMessage([
            enc.length, dec, btoa('hi!'), atob('aGkh'),
            r.some((x) => x !== 0), /^[0-9a-f-]{36}$/.test(crypto.randomUUID()),
            typeof t0 === 'number' && t0 >= 0 && Math.round(t0 * 10) === t0 * 10,
            location.origin, location.pathname, typeof queueMicrotask, typeof structuredClone,
            new DOMException('m', 'DataCloneError').code,
        ]);
        try { atob('*'); } catch (e) { postMessage(e.name); }
        try { new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff])); } catch (e) { postMessage(e.name); }
    "#;
    assert_eq!(
        e.start(&script("https://example.test:8443/w.js?x=1", src)),
        Step::Continue
    );
    assert_eq!(
        out.messages(),
        vec![
            json!([
                10,
                "héllo €",
                "aGkh",
                "hi!",
                true,
                true,
                true,
                "https://example.test:8443",
                "/w.js",
                "function",
                "function",
                25
            ]),
            json!("InvalidCharacterError"),
            json!("TypeError"),
        ]
    );
}

fn module(url: &str, source: &str, imports: &[(&str, &str)]) -> Script {
    Script {
        url: url.into(),
        source: source.into(),
        imports: imports
            .iter()
            .map(|(u, s)| ScriptSource {
                url: (*u).into(),
                source: (*s).into(),
            })
            .collect(),
        name: String::new(),
        module: true,
    }
}

#[test]
fn module_workers_import_only_what_was_supplied() {
    let (mut e, out) = roomy();
    let s = module(
        "https://example.test/app/w.mjs",
        r#"
        import { square } from './lib/math.mjs';
        import def from '/root.mjs';
        let importScriptsError = '';
        try { importScripts('x.js'); } catch (err) { importScriptsError = err.name; }
        self.onmessage = (e) => postMessage([square(e.data), def, importScriptsError, import.meta.url]);
        "#,
        &[
            (
                "https://example.test/app/lib/math.mjs",
                "export const square = (x) => x * x;",
            ),
            ("https://example.test/root.mjs", "export default 'root';"),
        ],
    );
    assert_eq!(e.start(&s), Step::Continue);
    assert_eq!(e.deliver(&enc(json!(7))), Step::Continue);
    assert_eq!(
        out.messages(),
        vec![json!([
            49,
            "root",
            "TypeError",
            "https://example.test/app/w.mjs"
        ])]
    );

    // A module nobody supplied: the worker's error event, not an unhandled rejection.
    let (mut e, out) = roomy();
    let s = module(
        "https://example.test/w.mjs",
        "import { x } from 'https://evil.test/x.mjs'; postMessage(x);",
        &[],
    );
    assert_eq!(e.start(&s), Step::Continue);
    let got = out.take();
    assert!(
        matches!(&got[..], [Rec::Control(FromExecutor::Error { message, .. })] if message.contains("evil.test")),
        "{got:?}"
    );

    // A throwing top level, after an await: an error event too.
    let (mut e, out) = roomy();
    let s = module(
        "https://example.test/w.mjs",
        "await null; throw new RangeError('late');",
        &[],
    );
    assert_eq!(e.start(&s), Step::Continue);
    let got = out.take();
    assert!(
        matches!(&got[..], [Rec::Control(FromExecutor::Error { message, .. })] if message == "Uncaught RangeError: late"),
        "{got:?}"
    );
}

#[test]
fn url_and_search_params_cover_the_common_cases() {
    let (mut e, out) = roomy();
    let src = r#"
        const u = new URL('../b/c.js?x=1&y=two+words#h', 'https://Example.test:443/a/w.js');
        const p = new URLSearchParams({ a: '1', b: 'x y' });
        p.append('a', '2');
        postMessage([u.href, u.origin, u.pathname, u.searchParams.get('y'), u.hash,
                     p.toString(), p.getAll('a'), String(new URL('http://h:8080/')),
                     new URL(location.href).pathname]);
        try { new URL('relative'); } catch (err) { postMessage(err.name); }
    "#;
    assert_eq!(
        e.start(&script("https://example.test/app/w.js", src)),
        Step::Continue
    );
    assert_eq!(
        out.messages(),
        vec![
            json!([
                "https://example.test/b/c.js?x=1&y=two+words#h",
                "https://example.test",
                "/b/c.js",
                "two words",
                "#h",
                "a=1&b=x+y&a=2",
                ["1", "2"],
                "http://h:8080/",
                "/app/w.js"
            ]),
            json!("TypeError"),
        ]
    );
}
