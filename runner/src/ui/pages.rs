//! The UI's pages, rendered on the server with maud (every value escaped): the backups, one backup, a restore's or
//! rollback's dry run and confirmation, an operation, the history, sign-in and errors. Forms post to `/operations`
//! with the CSRF token; the pages work without the script, which only follows a running operation.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use hookrun_archive::size::human_bytes;
use hookrun_catalog::{ArchivedSource, BackupRow, RunRow, UpgradeRow};
use maud::{html, Markup, DOCTYPE};

use super::charts;
use super::operations::Snapshot;
use crate::results::{RestorePlan, ShowResult};

/// A page: its title and what goes in its `<main>`.
pub struct Page {
    pub title: String,
    pub body: Markup,
}

impl Page {
    /// The whole document: header and navigation, then the body.
    pub fn render(&self) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " — hookrun" }
                    link rel="stylesheet" href="/assets/ui.css";
                    script src="/assets/ui.js" defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header {
                        nav aria-label="Main" {
                            strong { "hookrun" }
                            a href="/" { "Backups" }
                            a href="/history" { "History" }
                        }
                    }
                    main #main tabindex="-1" {
                        h1 { (self.title) }
                        (self.body)
                    }
                }
            }
        }
    }
}

fn respond(status: StatusCode, page: Page) -> Response {
    (status, Html(page.render().into_string())).into_response()
}

/// An error page: the message, and a way back.
pub fn error(status: StatusCode, message: &str, back: Option<&str>) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Busy",
        StatusCode::FORBIDDEN => "Refused",
        StatusCode::UNAUTHORIZED => "Sign in",
        _ => "It did not work",
    };
    respond(
        status,
        Page {
            title: title.into(),
            body: html! {
                p.error role="alert" #message { (message) }
                p { a href=(back.unwrap_or("/")) { "Back" } }
            },
        },
    )
}

/// The sign-in page (also what every request without the token gets, with 401).
pub fn login(status: StatusCode, message: Option<&str>) -> Response {
    respond(
        status,
        Page {
            title: "Sign in".into(),
            body: html! {
                @if let Some(message) = message { p.error role="alert" #message { (message) } }
                p { "Open the URL " code { "hookrun ui" } " printed when it started, or give the token of its "
                    code { "--token-file" } "." }
                form method="post" action="/login" {
                    label for="token" { "Token" }
                    input #token type="password" name="token" autocomplete="off" required;
                    button type="submit" { "Sign in" }
                }
            },
        },
    )
}

fn size(bytes: Option<i64>) -> String {
    bytes.map_or("—".into(), |b| human_bytes(b.max(0) as u64))
}

fn seconds(ms: Option<i64>) -> String {
    ms.map_or("—".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0))
}

/// A time as the catalog holds it (RFC 3339), shorter: date and time to the second, UTC.
fn when(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| at.to_string())
}

fn verified(row: &BackupRow) -> Markup {
    html! {
        @match row.verify_ok {
            Some(true) => span.ok title=(row.verified_at.as_deref().unwrap_or("")) { "verified" },
            Some(false) => span.bad title=(row.verify_error.as_deref().unwrap_or("")) { "failed" },
            None => span.muted { "never" },
        }
    }
}

fn status(text: &str) -> Markup {
    let class = match text {
        "completed" | "upgraded" | "rolled-back" => "ok",
        "running" => "running",
        _ => "bad",
    };
    html! { span class=(class) { (text) } }
}

/// A form that starts `action` (on backup `id`), with the CSRF token.
fn operation_form(action: &str, id: Option<i64>, label: &str, csrf: &str, extra: Markup) -> Markup {
    html! {
        form.inline method="post" action="/operations" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value=(action);
            @if let Some(id) = id { input type="hidden" name="id" value=(id); }
            (extra)
            button type="submit" name="go" value=(action) { (label) }
        }
    }
}

/// What the backups page shows.
pub struct BackupsView<'a> {
    pub rows: &'a [BackupRow],
    /// Whether any backup is a pre-upgrade one (a rollback point).
    pub rollback_points: bool,
    /// The newest completed backups, for the chart.
    pub trend: &'a [charts::Point],
    pub kind: Option<&'a str>,
    pub status: Option<&'a str>,
    /// Whether `[upgrade]` has a command.
    pub upgrade: bool,
    pub version: Option<&'a str>,
    /// Whether a run died and waits for `recover`.
    pub interrupted: bool,
    pub csrf: &'a str,
}

/// The backups, filtered; the operations that need no backup chosen; the size and duration chart.
pub fn backups(view: &BackupsView<'_>) -> Page {
    let body = html! {
        @if view.interrupted {
            p.error role="alert" { "A run was interrupted and may have left services stopped. "
                (operation_form("recover", None, "Recover now", view.csrf, html! {})) }
        }
        section aria-labelledby="ops" {
            h2 #ops { "Operations" }
            div.actions {
                (operation_form("backup", None, "Back up now", view.csrf, html! {}))
                @if view.rollback_points { a.button href="/rollback" { "Roll back…" } }
            }
            @if view.upgrade {
                (operation_form("upgrade", None, "Upgrade", view.csrf, html! {
                    label for="from" { "From" }
                    input #from name="from" required value=(view.version.unwrap_or(""));
                    label for="to" { "to" }
                    input #to name="to" required;
                }))
            }
        }
        section aria-labelledby="list" {
            h2 #list { "Backups" }
            form.filters method="get" action="/" {
                label for="type" { "Type" }
                select #type name="type" {
                    option value="" { "any" }
                    @for k in ["manual", "pre-upgrade"] { option value=(k) selected[view.kind == Some(k)] { (k) } }
                }
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "any" }
                    @for s in ["completed", "failed"] { option value=(s) selected[view.status == Some(s)] { (s) } }
                }
                button type="submit" { "Filter" }
            }
            @if view.rows.is_empty() {
                p.muted #empty { "No backups" @if view.kind.is_some() || view.status.is_some() { " match" } "." }
            } @else {
                div.scroll {
                    table #backups {
                        thead { tr { th { "ID" } th { "Type" } th { "Version" } th { "Created (UTC)" } th.num { "Size" }
                            th { "Status" } th { "Verified" } th { "Copies" } } }
                        tbody {
                            @for row in view.rows.iter().rev() {
                                tr {
                                    td { a href={"/backups/" (row.id)} { (row.id) } }
                                    td { (row.kind.as_str()) }
                                    td { (row.version) }
                                    td { (when(&row.created_at)) }
                                    td.num { (size(row.size)) }
                                    td { (status(row.status.as_str())) }
                                    td { (verified(row)) }
                                    td { @if row.copies.is_empty() { span.muted { "none" } } @else {
                                        (row.copies.iter().map(|c| c.location.as_str()).collect::<Vec<_>>().join(", ")) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(chart) = charts::size_and_duration(view.trend) {
            section aria-labelledby="trend" {
                h2 #trend { "Size and duration over time" }
                (chart)
            }
        }
    };
    Page {
        title: "Backups".into(),
        body,
    }
}

/// One backup: what it is, what can be done with it, what it holds, and how its run went (timeline, hooks,
/// services).
pub fn backup(shown: &ShowResult, csrf: &str) -> Page {
    let row = &shown.backup;
    let usable = row.status.as_str() == "completed" && !row.deleting;
    let body = html! {
        dl.facts {
            dt { "Type" } dd { (row.kind.as_str()) }
            dt { "Version" } dd { (row.version) }
            dt { "Created (UTC)" } dd { (when(&row.created_at)) }
            dt { "Status" } dd #status { (status(row.status.as_str())) @if let Some(e) = &row.error { " — " (e) } }
            dt { "Archive" } dd { (size(row.size)) @if let Some(c) = &row.compression { " (" (c) ")" } ", "
                (size(row.bytes)) " of data in " (row.file_count.unwrap_or(0)) " files" }
            dt { "Verified" } dd #verified { (verified(row)) @if let Some(e) = &row.verify_error { " — " (e) } }
            dt { "Took" } dd { (seconds(shown.run.as_ref().and_then(|r| r.duration_ms))) " (the archive written in "
                (seconds(row.duration_ms)) ")" }
            @if row.local_removed_at.is_some() { dt { "Local archive" } dd { "pruned; remote copies remain" } }
        }
        @if usable {
            div.actions {
                (operation_form("verify", Some(row.id), "Verify", csrf, html! {}))
                a.button href={"/backups/" (row.id) "/restore"} { "Restore…" }
                @if row.kind.as_str() == "pre-upgrade" { a.button href={"/rollback?to=" (row.id)} { "Roll back to this…" } }
            }
        }
        @if let Some(run) = &shown.run {
            section aria-labelledby="timeline" {
                h2 #timeline { "Timeline of run " (run.id) }
                @match charts::timeline(&run.started_at, &shown.hooks, &shown.services) {
                    Some(chart) => (chart),
                    None => p.muted { "The journal holds no times for this run." },
                }
                p.legend { span.key.hook {} " hook running " span.key.down {} " service down " span.key.failed {} " failed" }
            }
        }
        section aria-labelledby="sources" {
            h2 #sources { "What it holds" }
            div.scroll { table { thead { tr { th { "Path in the archive" } th { "Kind" } th { "Restored to" } } }
                tbody { @for s in &shown.sources { tr { td { code { (s.archive_path) } } td { (s.kind) } td { code { (s.host_path) } } } } } } }
        }
        @if !row.copies.is_empty() {
            section aria-labelledby="copies" {
                h2 #copies { "Copies" }
                div.scroll { table { thead { tr { th { "Remote" } th { "Key" } th.num { "Size" } th { "Encrypted" } th { "Read back" } } }
                    tbody { @for c in &row.copies { tr { td { (c.location) } td { code { (c.key) } } td.num { (size(Some(c.size))) }
                        td { @if c.encrypted { "yes (age)" } @else { "no" } }
                        td { @match c.verify_ok { Some(true) => span.ok { "ok" }, Some(false) => span.bad { "failed" }, None => span.muted { "never" } } } } } } } }
            }
        }
        @if !shown.hooks.is_empty() {
            section aria-labelledby="hooks" {
                h2 #hooks { "Hooks" }
                div.scroll { table { thead { tr { th { "#" } th { "Hook" } th { "Kind" } th { "Status" } th.num { "Took" } th { "Error" } } }
                    tbody { @for h in &shown.hooks { tr { td { (h.seq) } td { (h.name) } td { (h.hook_type) } td { (status(h.status.as_str())) }
                        td.num { (seconds(h.duration_ms)) } td { (h.error.as_deref().unwrap_or("")) } } } } } }
            }
        }
        @if !shown.services.is_empty() {
            section aria-labelledby="services" {
                h2 #services { "Services stopped" }
                div.scroll { table { thead { tr { th { "Service" } th { "Container" } th { "State" } th.num { "Downtime" } } }
                    tbody { @for s in &shown.services { tr { td { (s.service) } td { (s.container_name) } td { (s.state) }
                        td.num { (seconds(s.downtime_ms)) } } } } } }
            }
        }
    };
    Page {
        title: format!("Backup {}", row.id),
        body,
    }
}

/// A restore's (or rollback's) dry run — what it stops, replaces and creates, how much data — with the `--only`
/// choices of a restore and the button that confirms it.
pub fn restore_preview(
    plan: &RestorePlan,
    sources: &[ArchivedSource],
    rollback: bool,
    explicit: bool,
    csrf: &str,
) -> Page {
    let row = &plan.row;
    let restorable: Vec<&ArchivedSource> = sources.iter().filter(|s| s.kind != "compose").collect();
    let body = html! {
        p { "Nothing has changed yet. This is what "
            @if rollback { "rolling back to" } @else { "restoring" } " backup "
            a href={"/backups/" (row.id)} { (row.id) } " (" (row.kind.as_str()) " of version " (row.version) ", "
            (when(&row.created_at)) ") would do:" }
        ul #plan {
            @match &plan.stops_project {
                Some(project) => li { "Stop the Compose project " strong { (project) } " while the data is swapped, then start it again." },
                None => li { "No project is configured: nothing is stopped." },
            }
            @for t in &plan.targets {
                li { @if t.replaces { "Replace " } @else { "Create " } code { (t.to.display()) } " from " code { (t.from.display()) } }
            }
            @for c in &plan.recreates { li { "Re-create container " code { (c.name) } " (" (c.service) ") from " code { (c.image) } } }
            li { "Read and verify " (size(row.size)) " of archive (" (size(row.bytes)) " of data) before anything stops." }
        }
        @if !rollback && restorable.len() > 1 {
            form.only method="get" action={"/backups/" (row.id) "/restore"} {
                fieldset {
                    legend { "Only these paths (none ticked: all of them)" }
                    @for s in &restorable {
                        label { input type="checkbox" name="only" value=(s.archive_path) checked[plan.only.contains(&s.archive_path)];
                            " " code { (s.archive_path) } }
                    }
                }
                button type="submit" { "Show what this restores" }
            }
        }
        @let action = if rollback { "rollback" } else { "restore" };
        (operation_form(action, (explicit || !rollback).then_some(row.id),
            if rollback { "Roll back now" } else { "Restore now" }, csrf, html! {
            @for path in &plan.only { input type="hidden" name="only" value=(path); }
        }))
        p { a href={"/backups/" (row.id)} { "Cancel" } }
    };
    Page {
        title: if rollback {
            format!("Roll back to backup {}?", row.id)
        } else {
            format!("Restore backup {}?", row.id)
        },
        body,
    }
}

/// An operation as it is now; the script keeps it up to date while it runs.
pub fn operation(op: &Snapshot) -> Page {
    let bytes = |n: u64, unit: &str| {
        if unit == "bytes" {
            human_bytes(n)
        } else {
            format!("{n} {unit}")
        }
    };
    let body = html! {
        div #op data-events={"/operations/" (op.id) "/events"} data-finished=(op.finished.is_some()) {
            p #op-status role="status" aria-live="polite" {
                @match &op.finished {
                    None => span.running { "running" },
                    Some(f) if f.ok => span.ok { "succeeded" },
                    Some(_) => span.bad { "failed" },
                }
            }
            p { "Started " (when(&op.started_at)) " UTC. " span #op-step { @if op.finished.is_some() { "Last step: " } @else { "Now: " } }
                span #op-hook { (op.hook.as_deref().unwrap_or("starting")) } }
            div.progress {
                progress #op-bar max="100" value=(op.percent.unwrap_or(0)) aria-label="Progress" {}
                span #op-percent { @if let Some(p) = op.percent { (p) " %" } }
            }
            p { span #op-bytes { @if op.total > 0 { (bytes(op.done, &op.unit)) " / " (bytes(op.total, &op.unit)) } }
                " " span #op-eta { @if let Some(eta) = op.eta_seconds { "ETA " (eta) " s" } } }
            h2 { "Services" }
            div.scroll { table { thead { tr { th { "Service" } th { "State" } th.num { "Downtime" } } }
                tbody #op-services { @for s in &op.services { tr { td { (s.service) } td { (s.state) } td.num { (seconds(s.downtime_ms)) } } } } } }
            h2 { "Log" }
            pre #op-log tabindex="0" { @for line in &op.log { (line) "\n" } }
            p #op-outcome { @if let Some(f) = &op.finished { (f.summary) " (exit " (f.exit_code) ")" } }
            @if let Some(run) = op.run_id { p { "Run " (run) " — see " a href="/history" { "History" } "." } }
        }
    };
    Page {
        title: format!("Operation {}: {}", op.id, op.title),
        body,
    }
}

/// The runs (backups and restores) and upgrades, newest first, with their outcome and error; an interrupted run
/// offers `recover`; and the operations this server started.
pub fn history(runs: &[RunRow], upgrades: &[UpgradeRow], interrupted: &[i64], ops: &[Snapshot], csrf: &str) -> Page {
    let body = html! {
        @if !interrupted.is_empty() {
            p.error role="alert" { "Run " (interrupted.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))
                " was interrupted and may have left services stopped. " (operation_form("recover", None, "Recover now", csrf, html! {})) }
        }
        @if !ops.is_empty() {
            section aria-labelledby="ops" {
                h2 #ops { "Operations from this page" }
                ul { @for op in ops { li { a href={"/operations/" (op.id)} { (op.id) ": " (op.title) } " — "
                    @match &op.finished { None => span.running { "running" }, Some(f) => (f.summary) } } } }
            }
        }
        section aria-labelledby="runs" {
            h2 #runs { "Runs" }
            div.scroll { table #history { thead { tr { th { "Run" } th { "Kind" } th { "Version" } th { "Started (UTC)" } th.num { "Took" }
                th { "Status" } th { "Error" } } }
                tbody { @for run in runs { tr { td { (run.id) } td { (run.kind.as_str()) } td { (run.version) } td { (when(&run.started_at)) }
                    td.num { (seconds(run.duration_ms)) }
                    td { @if interrupted.contains(&run.id) { span.bad { "interrupted (not recovered)" } } @else { (status(run.status.as_str())) } }
                    td { (run.error.as_deref().unwrap_or("")) } } } } } }
        }
        @if !upgrades.is_empty() {
            section aria-labelledby="upgrades" {
                h2 #upgrades { "Upgrades" }
                div.scroll { table { thead { tr { th { "Upgrade" } th { "From" } th { "To" } th { "Started (UTC)" } th { "Status" } th { "Error" } } }
                    tbody { @for u in upgrades.iter().rev() { tr { td { (u.id) } td { (u.from_version) } td { (u.to_version) }
                        td { (when(&u.started_at)) } td { (status(&u.status.to_string())) } td { (u.error.as_deref().unwrap_or("")) } } } } } }
            }
        }
    };
    Page {
        title: "History".into(),
        body,
    }
}
