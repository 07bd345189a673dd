//! How likely a visit is to run an interaction path: the chance that the user triggers a
//! handler's event on its target during a visit, by event family and target, instead of one
//! flat rate for every handler.
//!
//! The rates are priors, set from how people use pages rather than measured per site (the
//! extension's on-device learning corrects what a path costs, not how often it runs):
//!
//! | event family | on the page (window, document, body: delegated) | on one element |
//! |---|---|---|
//! | scrolling (`scroll`, `wheel`, `touchmove`) | 0.8: most visits scroll | 0.3 (a scroll box) |
//! | pointer movement (`mousemove`, `pointermove`, `mouseover`...) | 0.9: any mouse use | 0.4 |
//! | clicks (`click`, `pointerdown`, `mousedown`, `touchstart`...) | 0.6: any click anywhere | 0.25 |
//! | `dblclick`, `contextmenu` | 0.1 | 0.05 |
//! | keys (`keydown`, `keyup`, `keypress`) | 0.3: shortcuts, typing anywhere | 0.15 (a field) |
//! | text entry (`input`, `change`, `beforeinput`) | 0.2 | 0.15 |
//! | `focus`, `blur`, `focusin`, `focusout` | 0.3 | 0.15 |
//! | `submit`, `reset` | 0.1 | 0.05 |
//! | leaving (`beforeunload`, `pagehide`, `visibilitychange`, `unload`) | 0.95: every visit ends | 0.95 |
//! | `resize`, `orientationchange` | 0.1 | 0.1 |
//! | drag and drop (`drag*`, `drop`) | 0.05 | 0.05 |
//! | anything else (`message`, `storage`, `hashchange`, custom events...) | 0.2 | 0.1 |
//!
//! A target the capture found hidden (`display: none`, no box: `TabActivity.hidden_targets`)
//! cannot be clicked or typed into until something shows it: a tenth of the rate. A page
//! captured in a background tab (`visible: false`) gets a third of the rate for user events
//! (it may never be looked at), but leaving still happens.

use foresight_shared::protocol::demand::TabActivity;

/// Share of the rate left for a target the capture found hidden.
pub const HIDDEN_TARGET_FACTOR: f64 = 0.1;
/// Share of the rate left for user events on a page captured in a background tab.
pub const BACKGROUND_TAB_FACTOR: f64 = 1.0 / 3.0;

/// Event families, for the rate table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Scroll,
    PointerMove,
    Click,
    RareClick,
    Key,
    TextEntry,
    Focus,
    Submit,
    Leave,
    Resize,
    Drag,
    Other,
}

pub fn family(event: &str) -> Family {
    match event {
        "scroll" | "scrollend" | "wheel" | "mousewheel" | "touchmove" => Family::Scroll,
        "mousemove" | "pointermove" | "mouseover" | "mouseout" | "mouseenter" | "mouseleave"
        | "pointerover" | "pointerout" | "pointerenter" | "pointerleave" => Family::PointerMove,
        "click" | "pointerdown" | "pointerup" | "mousedown" | "mouseup" | "touchstart"
        | "touchend" | "auxclick" => Family::Click,
        "dblclick" | "contextmenu" => Family::RareClick,
        "keydown" | "keyup" | "keypress" => Family::Key,
        "input" | "change" | "beforeinput" | "compositionend" | "paste" | "cut" | "copy" => {
            Family::TextEntry
        }
        "focus" | "blur" | "focusin" | "focusout" => Family::Focus,
        "submit" | "reset" => Family::Submit,
        "beforeunload" | "pagehide" | "visibilitychange" | "unload" | "freeze" => Family::Leave,
        "resize" | "orientationchange" => Family::Resize,
        e if e.starts_with("drag") || e == "drop" => Family::Drag,
        _ => Family::Other,
    }
}

/// Whether a target names the page as a whole (so the handler hears every such event).
fn page_wide(target: &str) -> bool {
    let t = target.trim_start_matches("$(").trim_end_matches(')');
    matches!(
        t,
        "window" | "document" | "self" | "globalThis" | "body" | "document.body" | "html"
    ) || t.starts_with("body")
}

/// The probability that a visit runs the handler for `event` on `target`.
pub fn probability(event: &str, target: &str, activity: &TabActivity) -> f64 {
    let f = family(event);
    let wide = page_wide(target);
    let rate = match (f, wide) {
        (Family::Scroll, true) => 0.8,
        (Family::Scroll, false) => 0.3,
        (Family::PointerMove, true) => 0.9,
        (Family::PointerMove, false) => 0.4,
        (Family::Click, true) => 0.6,
        (Family::Click, false) => 0.25,
        (Family::RareClick, true) => 0.1,
        (Family::RareClick, false) => 0.05,
        (Family::Key, true) => 0.3,
        (Family::Key, false) => 0.15,
        (Family::TextEntry, true) => 0.2,
        (Family::TextEntry, false) => 0.15,
        (Family::Focus, true) => 0.3,
        (Family::Focus, false) => 0.15,
        (Family::Submit, true) => 0.1,
        (Family::Submit, false) => 0.05,
        (Family::Leave, _) => 0.95,
        (Family::Resize, _) => 0.1,
        (Family::Drag, _) => 0.05,
        (Family::Other, true) => 0.2,
        (Family::Other, false) => 0.1,
    };
    let user_event = f != Family::Leave;
    let mut p = rate;
    if user_event && !wide && activity.hidden_targets.iter().any(|h| h == target) {
        p *= HIDDEN_TARGET_FACTOR;
    }
    // A capture that says nothing about visibility (an old content script, the CLI) is not
    // a background tab: only an explicit `visible: false` from a live capture counts.
    if user_event && !activity.visible && activity.dom_nodes > 0 {
        p *= BACKGROUND_TAB_FACTOR;
    }
    p.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown() -> TabActivity {
        TabActivity {
            visible: true,
            dom_nodes: 100,
            ..TabActivity::default()
        }
    }

    #[test]
    fn page_wide_scrolling_is_likelier_than_a_click_on_one_button_and_leaving_likeliest() {
        let a = shown();
        let scroll = probability("scroll", "window", &a);
        let click = probability("click", "#sort", &a);
        let delegated = probability("click", "document", &a);
        let submit = probability("submit", "form#f", &a);
        let leave = probability("beforeunload", "window", &a);
        assert!(leave > scroll && scroll > delegated && delegated > click && click > submit);
    }

    #[test]
    fn hidden_targets_and_background_tabs_are_less_likely_but_leaving_is_not() {
        let mut a = shown();
        a.hidden_targets = vec!["#menu".into()];
        let hidden = probability("click", "#menu", &a);
        assert!((hidden - probability("click", "#sort", &a) * HIDDEN_TARGET_FACTOR).abs() < 1e-12);
        let mut background = shown();
        background.visible = false;
        assert!(probability("click", "#sort", &background) < probability("click", "#sort", &a));
        assert_eq!(
            probability("pagehide", "window", &background),
            probability("pagehide", "window", &a)
        );
        // The CLI reports no activity at all: not treated as a background tab.
        assert_eq!(
            probability("click", "#sort", &TabActivity::default()),
            probability("click", "#sort", &a)
        );
    }
}
