//! The UI's charts, drawn on the server as inline SVG (no script, no library): a run's timeline (each hook's span,
//! each service's downtime) and the backups' size and duration over time.

use chrono::{DateTime, Utc};
use hookrun_archive::size::human_bytes;
use hookrun_catalog::{HookResultRow, ServiceRow};
use maud::{html, Markup};

/// The drawing's width in SVG units; it scales to the page.
const WIDTH: f64 = 720.0;
/// The labels' column.
const LABELS: f64 = 150.0;
const ROW: f64 = 22.0;

fn at(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// One bar of the timeline.
struct Span {
    label: String,
    class: &'static str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    title: String,
}

/// A run's timeline: a row per hook (from its start, for its duration; failed ones marked) and a row per service
/// stopped (from its stop to its start: its downtime), on one time axis from the run's start. None when the journal
/// has no times to draw.
pub fn timeline(run_started: &str, hooks: &[HookResultRow], services: &[ServiceRow]) -> Option<Markup> {
    let origin = at(run_started)?;
    let mut spans = Vec::new();
    for hook in hooks {
        let (Some(start), Some(ms)) = (hook.started_at.as_deref().and_then(at), hook.duration_ms) else {
            continue;
        };
        let class = match hook.status.as_str() {
            "completed" => "hook",
            "skipped" => continue,
            _ => "hook failed",
        };
        spans.push(Span {
            label: format!("{} ({})", hook.name, hook.hook_type),
            class,
            start,
            end: start + chrono::Duration::milliseconds(ms.max(0)),
            title: format!("{}: {} in {:.2} s", hook.name, hook.status, ms as f64 / 1000.0),
        });
    }
    for service in services {
        let Some(stopped) = service.stopped_at.as_deref().and_then(at) else {
            continue;
        };
        let started = service.started_at.as_deref().and_then(at);
        let end = started.unwrap_or(stopped);
        let title = match (started, service.downtime_ms) {
            (Some(_), Some(ms)) => format!("{} down for {:.2} s", service.service, ms as f64 / 1000.0),
            _ => format!("{} stopped, not started again ({})", service.service, service.state),
        };
        spans.push(Span {
            label: format!("{} down", service.service),
            class: if started.is_some() { "down" } else { "down failed" },
            start: stopped,
            end,
            title,
        });
    }
    if spans.is_empty() {
        return None;
    }
    let last = spans.iter().map(|s| s.end).max().unwrap_or(origin);
    let total_ms = ((last - origin).num_milliseconds()).max(1) as f64;
    let scale = (WIDTH - LABELS - 10.0) / total_ms;
    let x = |t: DateTime<Utc>| LABELS + ((t - origin).num_milliseconds().max(0) as f64) * scale;
    let height = ROW * spans.len() as f64 + 30.0;
    let ticks = 5;
    Some(html! {
        svg.chart.timeline viewBox={"0 0 " (WIDTH) " " (height)} role="img"
            aria-label="Timeline of the run: each hook's span and each service's downtime" {
            @for (i, span) in spans.iter().enumerate() {
                @let y = ROW * i as f64 + 4.0;
                text.label x="4" y=(y + 14.0) { (span.label) }
                rect class=(span.class) x=(format!("{:.1}", x(span.start))) y=(y + 2.0)
                    width=(format!("{:.1}", (x(span.end) - x(span.start)).max(2.0))) height=(ROW - 6.0) {
                    title { (span.title) }
                }
            }
            @for tick in 0..=ticks {
                @let ms = total_ms * tick as f64 / ticks as f64;
                @let tx = LABELS + ms * scale;
                line.axis x1=(format!("{tx:.1}")) x2=(format!("{tx:.1}")) y1="0" y2=(height - 16.0) {}
                @let anchor = if tick == ticks { "end" } else if tick == 0 { "start" } else { "middle" };
                text.tick x=(format!("{tx:.1}")) y=(height - 4.0) text-anchor=(anchor) { (format!("{:.1} s", ms / 1000.0)) }
            }
        }
    })
}

/// One backup on the trend chart: its id, archive size and the duration of the run that made it.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub id: i64,
    pub size: u64,
    pub duration_ms: u64,
}

/// The completed backups' archive sizes (bars) and their runs' durations (a line), oldest first. None with fewer
/// than two backups to compare.
pub fn size_and_duration(points: &[Point]) -> Option<Markup> {
    if points.len() < 2 {
        return None;
    }
    let (height, top, bottom) = (220.0, 20.0, 30.0);
    let max_size = points.iter().map(|p| p.size as f64).fold(1.0, f64::max);
    let max_ms = points.iter().map(|p| p.duration_ms as f64).fold(1.0, f64::max);
    let plot = WIDTH - 60.0;
    let step = plot / points.len() as f64;
    let y_size = |v: f64| height - bottom - (v / max_size) * (height - top - bottom);
    let y_ms = |v: f64| height - bottom - (v / max_ms) * (height - top - bottom);
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{:.1},{:.1}",
                40.0 + step * (i as f64 + 0.5),
                y_ms(p.duration_ms as f64)
            )
        })
        .collect();
    Some(html! {
        svg.chart.trend viewBox={"0 0 " (WIDTH) " " (height)} role="img"
            aria-label="Archive size (bars) and backup duration (line) of each completed backup, oldest first" {
            text.tick x="4" y="12" { "size, up to " (human_bytes(max_size as u64)) }
            text.tick.duration x=(WIDTH - 4.0) y="12" text-anchor="end" { "duration, up to " (format!("{:.1} s", max_ms / 1000.0)) }
            @for (i, p) in points.iter().enumerate() {
                @let (size, ms) = (p.size as f64, p.duration_ms as f64);
                @let bx = 40.0 + step * i as f64 + step * 0.15;
                rect.size x=(format!("{bx:.1}")) y=(format!("{:.1}", y_size(size))) width=(format!("{:.1}", step * 0.7))
                    height=(format!("{:.1}", (height - bottom - y_size(size)).max(1.0))) {
                    title { "backup " (p.id) ": " (human_bytes(p.size)) ", " (format!("{:.1} s", ms / 1000.0)) }
                }
                @if points.len() <= 20 || i % (points.len() / 10).max(1) == 0 {
                    text.tick x=(format!("{:.1}", bx + step * 0.35)) y=(height - 12.0) text-anchor="middle" { (p.id) }
                }
            }
            polyline.duration points=(line.join(" ")) {}
            text.tick x="4" y=(height - 12.0) { "id" }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookrun_catalog::HookStatus;

    fn hook(name: &str, started: &str, ms: i64, status: HookStatus) -> HookResultRow {
        HookResultRow {
            seq: 0,
            name: name.into(),
            hook_type: "builtin".into(),
            status,
            error: None,
            started_at: Some(started.into()),
            duration_ms: Some(ms),
            outputs: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_timeline_draws_a_bar_per_hook_and_per_downtime_on_one_axis() {
        let hooks = [
            hook("stop", "2026-01-01T00:00:00Z", 1000, HookStatus::Completed),
            hook("backup", "2026-01-01T00:00:01Z", 3000, HookStatus::Failed),
        ];
        let services = [ServiceRow {
            container_id: "c".into(),
            container_name: "demo_db_1".into(),
            service: "db".into(),
            start_layer: 0,
            state: "started".into(),
            stopped_at: Some("2026-01-01T00:00:00.500Z".into()),
            started_at: Some("2026-01-01T00:00:04Z".into()),
            downtime_ms: Some(3500),
            error: None,
        }];
        let svg = timeline("2026-01-01T00:00:00Z", &hooks, &services)
            .unwrap()
            .into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(
            svg.contains("class=\"hook failed\""),
            "the failed hook is marked: {svg}"
        );
        assert!(svg.contains("db down for 3.50 s"), "{svg}");
        // The axis ends at the last end (4 s); the stop spans a quarter of the plot from the labels' edge.
        assert!(svg.contains(">4.0 s<"), "{svg}");
        let plot = WIDTH - LABELS - 10.0;
        assert!(
            svg.contains(&format!("x=\"{LABELS:.1}\" y=\"6\" width=\"{:.1}\"", plot / 4.0)),
            "{svg}"
        );
    }

    #[test]
    fn a_run_without_times_has_no_timeline() {
        assert!(timeline("2026-01-01T00:00:00Z", &[], &[]).is_none());
        assert!(timeline("not a time", &[], &[]).is_none());
    }
}
