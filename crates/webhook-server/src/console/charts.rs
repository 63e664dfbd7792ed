//! Charts drawn by the page itself as inline SVG: bars with their numbers as text, so a
//! screen reader and a page without script read the same values.

use maud::{Markup, html};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 160;
const AXIS: u32 = 20;

/// A bar chart of `bars` (label, value), titled `title`.
pub(crate) fn bars(title: &str, bars: &[(String, u32)]) -> Markup {
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let n = u32::try_from(bars.len().max(1)).unwrap_or(1);
    let slot = WIDTH / n;
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT + AXIS) } role="img" aria-label=(title) {
                title { (title) }
                @for (i, (label, value)) in bars.iter().enumerate() {
                    @let x = u32::try_from(i).unwrap_or(0) * slot;
                    @let h = value * HEIGHT / max;
                    rect.bar x=(x + 2) y=(HEIGHT - h) width=(slot.saturating_sub(4)) height=(h) {
                        title { (label) ": " (value) }
                    }
                    text x=(x + slot / 2) y=(HEIGHT + 14) text-anchor="middle" { (label) }
                }
            }
            figcaption { (title) }
        }
    }
}

/// Attempts per hour, succeeded and failed stacked, oldest hour first.
pub(crate) fn hourly(title: &str, hours: &[(u32, u32)]) -> Markup {
    let max = hours
        .iter()
        .map(|(ok, bad)| ok + bad)
        .max()
        .unwrap_or(0)
        .max(1);
    let n = u32::try_from(hours.len().max(1)).unwrap_or(1);
    let slot = WIDTH / n;
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT + AXIS) } role="img" aria-label=(title) {
                title { (title) }
                @for (i, (ok, bad)) in hours.iter().enumerate() {
                    @let x = u32::try_from(i).unwrap_or(0) * slot;
                    @let ok_h = ok * HEIGHT / max;
                    @let bad_h = bad * HEIGHT / max;
                    rect.ok x=(x + 1) y=(HEIGHT - ok_h) width=(slot.saturating_sub(2)) height=(ok_h) {
                        title { (ok) " succeeded" }
                    }
                    rect.failed x=(x + 1) y=(HEIGHT - ok_h - bad_h) width=(slot.saturating_sub(2)) height=(bad_h) {
                        title { (bad) " failed" }
                    }
                }
                text x="0" y=(HEIGHT + 14) { "24 h ago" }
                text x=(WIDTH) y=(HEIGHT + 14) text-anchor="end" { "now" }
            }
            figcaption {
                (title) " — "
                span.legend-ok { "succeeded" } " / " span.legend-failed { "failed" }
            }
        }
    }
}
