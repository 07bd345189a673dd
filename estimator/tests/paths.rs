//! What each path says about itself: the event and element an interaction path belongs to,
//! and how every path's demand spreads over time (its demand curve).

mod common;

use common::{handler, inline, page, run};
use foresight_shared::protocol::demand::{PageDemand, PathDemand, PathKind};

fn interaction<'a>(d: &'a PageDemand, name: &str) -> &'a PathDemand {
    d.paths
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no path {name:?} in {:?}", names(d)))
}

fn names(d: &PageDemand) -> Vec<&str> {
    d.paths.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn interaction_paths_carry_their_event_and_a_selector_for_their_element() {
    let src = r#"
        const sort = document.getElementById('sort');
        sort.addEventListener('click', () => rows.sort());
        var form = document.querySelector('form.search');
        form.onsubmit = function (e) { e.preventDefault(); };
        document.getElementById('q').addEventListener('input', (e) => filter(e.target.value));
        document.body.addEventListener('keydown', () => {});
        document.getElementById('a.b').onclick = () => {};
        // Delegated: registered on the document, whatever element is clicked.
        document.addEventListener('click', (e) => { if (e.target.matches('.row')) open(e); });
        $(document).on('click', '.item', function () { select(this); });
        window.addEventListener('scroll', () => {});
    "#;
    let mut p = page(vec![inline(src)]);
    p.handlers.push(handler("button#save", "click", "save()"));
    let d = run(&p);
    let expect = [
        ("click", "#sort"),
        ("submit", "form.search"),
        ("input", "#q"),
        ("keydown", "body"),
        ("click", "[id=\"a.b\"]"),
        ("click", "document"),
        ("click", "document"),
        ("scroll", "window"),
        ("click", "button#save"),
    ];
    let got: Vec<(&str, &str)> = d.paths[1..]
        .iter()
        .map(|p| {
            assert_eq!(p.kind, PathKind::Interaction);
            (
                p.event.as_deref().expect("event"),
                p.target.as_deref().expect("target"),
            )
        })
        .collect();
    assert_eq!(got, expect, "{:?}", names(&d));
    // The load path is triggered by nothing.
    assert_eq!(d.paths[0].event, None);
    assert_eq!(d.paths[0].target, None);
}

#[test]
fn every_path_has_a_curve_that_accounts_for_its_demand() {
    let src = r#"
        let data = [];
        for (let i = 0; i < 2e6; i++) { data.push(i * 2); }
        document.getElementById('go').addEventListener('click', () => {
            for (let i = 0; i < 1e6; i++) { data[i] = data[i] + 1; }
        });
    "#;
    let d = run(&page(vec![inline(src)]));
    for p in &d.paths {
        let c = &p.curve;
        assert!(!c.buckets.is_empty(), "{}", p.name);
        assert!(c.buckets.len() <= 32);
        assert!(c.bucket_ms >= 1.0);
        for b in &c.buckets {
            assert!(b.cpu_ms.p10 <= b.cpu_ms.p50 && b.cpu_ms.p50 <= b.cpu_ms.p90);
            assert!(b.cpu_ms.p90 <= c.bucket_ms + 1e-9, "{b:?}");
        }
        // The median curve holds the median CPU time, and memory adds up to the path's.
        let busy: f64 = c.buckets.iter().map(|b| b.cpu_ms.p50).sum();
        let rel = (busy - p.cpu_ms.p50).abs() / p.cpu_ms.p50;
        assert!(
            rel < 1e-6,
            "{}: curve {busy} vs path {}",
            p.name,
            p.cpu_ms.p50
        );
        let last = c.buckets.last().expect("a bucket");
        assert!((last.memory_bytes.p50 - p.memory_bytes.p50).abs() <= 1e-6 * p.memory_bytes.p50);
    }
}

#[test]
fn a_timer_shows_up_after_its_delay_on_the_load_curve() {
    // 1e6 iterations of a few units each: a few ms of script, then the thread idles until the
    // timer's 400 ms, when the heavy callback runs.
    let src = r#"
        const DELAY = 400;
        let x = 0;
        for (let i = 0; i < 1e6; i++) { x = x + i; }
        setTimeout(() => { for (let i = 0; i < 2e7; i++) { x = x + i; } }, DELAY);
    "#;
    let d = run(&page(vec![inline(src)]));
    let c = &d.paths[0].curve;
    let at = |ms: f64| {
        let i = (ms / c.bucket_ms) as usize;
        c.buckets.get(i).map_or(0.0, |b| b.cpu_ms.p50)
    };
    assert!(at(0.0) > 0.0, "{c:?}");
    assert_eq!(
        at(200.0),
        0.0,
        "idle between the script and the timer: {c:?}"
    );
    assert!(
        at(401.0) > 0.0,
        "the timer's callback runs at 400 ms: {c:?}"
    );
}

#[test]
fn an_interaction_curve_starts_at_the_event() {
    let src = r#"
        document.getElementById('go').onclick = () => {
            for (let i = 0; i < 3e6; i++) { Math.sqrt(i); }
            requestAnimationFrame(() => { for (let i = 0; i < 3e6; i++) { Math.sqrt(i); } });
        };
    "#;
    let d = run(&page(vec![inline(src)]));
    let p = interaction(&d, "click #go");
    let busy: Vec<f64> = p.curve.buckets.iter().map(|b| b.cpu_ms.p50).collect();
    assert!(busy[0] > 0.0, "{busy:?}");
    assert!(busy.iter().filter(|b| **b > 0.0).count() > 1, "{busy:?}");
}
