//! The `notify` built-in: tells people how a run went — a JSON webhook (the run's summary), an ntfy message, and a
//! healthchecks.io-style ping (`/start` from a notify hook placed first, the URL itself on success, `/fail` on
//! failure, so that a missing ping is the alarm) — each retried with backoff, each attempt bounded by a timeout. The
//! URLs carry secrets: they come from the environment or a file and no message ever shows one (a target is named by
//! where its URL came from).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::{Hook, HookError, RunContext};

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A POST of the run's summary as JSON.
    Webhook,
    /// An ntfy topic URL (`https://ntfy.sh/TOPIC`): a POST of one message, its title and priority in headers.
    Ntfy,
    /// A healthchecks.io-style ping URL: `URL/start`, `URL` (success), `URL/fail`.
    Healthchecks,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Ntfy => "ntfy",
            Channel::Healthchecks => "healthchecks",
        }
    }
}

/// One target: its channel, its URL (a secret, never shown), and where the URL came from (what messages say).
#[derive(Clone)]
pub struct Target {
    pub channel: Channel,
    pub url: String,
    /// E.g. `$HOOKRUN_WEBHOOK_URL` or `/etc/hookrun/ntfy-url`.
    pub from: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({} from {})", self.channel.name(), self.from)
    }
}

/// When in the run the hook notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyEvent {
    /// The run has started (the hook is placed first): healthchecks gets `/start`.
    Start,
    /// The run has done its work (the hook is placed last): how it went.
    #[default]
    End,
}

/// The `notify` hook's configuration.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub targets: Vec<Target>,
    pub event: NotifyEvent,
    /// Attempts after the first, each after twice the wait before it (from `backoff`).
    pub retries: u32,
    /// The first wait between attempts.
    pub backoff: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

/// The run as a notification tells it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `started`, `completed` or `failed`.
    pub status: String,
    pub kind: String,
    pub version: String,
    pub project: Option<String>,
    pub run_id: i64,
    /// The first failure, as `hook NAME: ERROR`.
    pub error: Option<String>,
    pub backup_id: Option<i64>,
    pub archive_bytes: Option<u64>,
    /// Each service the run stopped, and how long it was down (ms).
    pub downtime_ms: BTreeMap<String, i64>,
    /// The hooks so far, a line each: `NAME: STATUS` (and the error).
    pub log_tail: Vec<String>,
}

impl Summary {
    /// The run so far, from its context and journal.
    pub fn of(ctx: &RunContext, event: NotifyEvent) -> Self {
        let status = match (event, &ctx.failure) {
            (NotifyEvent::Start, _) => "started",
            (NotifyEvent::End, None) => "completed",
            (NotifyEvent::End, Some(_)) => "failed",
        };
        let catalog = &ctx.catalog;
        let downtime_ms = catalog
            .services(ctx.run_id)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| Some((s.service, s.downtime_ms?)))
            .collect();
        let log_tail = catalog
            .hook_results(ctx.run_id)
            .unwrap_or_default()
            .iter()
            .rev()
            .take(20)
            .rev()
            .map(|h| match &h.error {
                Some(e) => format!("{}: {} ({e})", h.name, h.status),
                None => format!("{}: {}", h.name, h.status),
            })
            .collect();
        Self {
            status: status.to_string(),
            kind: ctx.kind.as_str().to_string(),
            version: ctx.version.clone(),
            project: ctx.project.clone(),
            run_id: ctx.run_id,
            error: ctx.failure.as_ref().map(|f| format!("hook {}: {}", f.hook, f.message)),
            backup_id: catalog.backup_of_run(ctx.run_id).ok().flatten().map(|b| b.id),
            archive_bytes: ctx.archive.as_ref().map(|a| a.size),
            downtime_ms,
            log_tail,
        }
    }

    /// One line for people: `hookrun manual 1.2.3 on myapp: failed: hook backup: …`.
    pub fn headline(&self) -> String {
        let on = self.project.as_deref().map(|p| format!(" on {p}")).unwrap_or_default();
        match &self.error {
            Some(error) => format!("hookrun {} {}{on}: {}: {error}", self.kind, self.version, self.status),
            None => format!("hookrun {} {}{on}: {}", self.kind, self.version, self.status),
        }
    }
}

/// The `notify` hook.
#[derive(Debug)]
pub struct NotifyHook {
    name: String,
    config: NotifyConfig,
}

impl NotifyHook {
    /// A notify hook called `name`.
    pub fn new(name: impl Into<String>, config: NotifyConfig) -> Self {
        Self {
            name: name.into(),
            config,
        }
    }
}

/// The request one target gets for `summary`: method, URL, headers and body.
fn request(target: &Target, summary: &Summary) -> (reqwest::Method, String, Vec<(&'static str, String)>, String) {
    match target.channel {
        Channel::Webhook => (
            reqwest::Method::POST,
            target.url.clone(),
            vec![("content-type", "application/json".to_string())],
            serde_json::to_string(summary).unwrap_or_default(),
        ),
        Channel::Ntfy => {
            let failed = summary.status == "failed";
            let mut body = summary.headline();
            for (service, ms) in &summary.downtime_ms {
                body.push_str(&format!("\n{service} down {:.1} s", *ms as f64 / 1000.0));
            }
            let headers = vec![
                ("title", format!("hookrun: {} {}", summary.kind, summary.status)),
                ("priority", if failed { "high" } else { "default" }.to_string()),
                ("tags", if failed { "warning" } else { "white_check_mark" }.to_string()),
            ];
            (reqwest::Method::POST, target.url.clone(), headers, body)
        }
        Channel::Healthchecks => {
            let base = target.url.trim_end_matches('/');
            let url = match summary.status.as_str() {
                "started" => format!("{base}/start"),
                "failed" => format!("{base}/fail"),
                _ => base.to_string(),
            };
            let body = format!("{}\n{}", summary.headline(), summary.log_tail.join("\n"));
            (reqwest::Method::POST, url, Vec::new(), body)
        }
    }
}

/// Sends one target's notification, retrying (after `backoff`, doubling) on a failure to connect, a timeout, or an
/// answer that is not 2xx. The error names the target by where its URL came from, never by the URL.
async fn send(
    client: &reqwest::Client,
    target: &Target,
    summary: &Summary,
    config: &NotifyConfig,
) -> Result<(), String> {
    let (method, url, headers, body) = request(target, summary);
    let mut wait = config.backoff;
    let mut last = String::new();
    for attempt in 0..=config.retries {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        let mut builder = client
            .request(method.clone(), &url)
            .timeout(config.timeout)
            .body(body.clone());
        for (name, value) in &headers {
            builder = builder.header(*name, value);
        }
        match builder.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last = format!("the server answered {}", response.status()),
            Err(e) if e.is_timeout() => last = format!("no answer within {:?}", config.timeout),
            // reqwest's error names the URL: say only what kind of failure it was.
            Err(e) if e.is_connect() => last = "cannot connect to the server".to_string(),
            Err(e) => last = e.without_url().to_string(),
        }
        tracing::info!(
            "notify: {} ({}) attempt {} failed: {last}",
            target.channel.name(),
            target.from,
            attempt + 1
        );
    }
    Err(format!(
        "{} ({}): {last} ({} attempts)",
        target.channel.name(),
        target.from,
        config.retries + 1
    ))
}

#[async_trait]
impl Hook for NotifyHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "notify"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<(), HookError> {
        let summary = Summary::of(ctx, self.config.event);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| HookError::Misconfigured(format!("cannot make an HTTP client: {e}")))?;
        let mut failed = Vec::new();
        for target in &self.config.targets {
            let sent = tokio::select! {
                sent = send(&client, target, &summary, &self.config) => sent,
                () = ctx.cancel.cancelled() => return Err(HookError::Cancelled),
            };
            if let Err(why) = sent {
                failed.push(why);
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(HookError::Notify(failed.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: &str) -> Summary {
        Summary {
            status: status.into(),
            kind: "manual".into(),
            version: "1.2.3".into(),
            project: Some("app".into()),
            run_id: 7,
            error: (status == "failed").then(|| "hook backup: disk full".to_string()),
            backup_id: Some(3),
            archive_bytes: Some(1024),
            downtime_ms: BTreeMap::from([("db".to_string(), 1500)]),
            log_tail: vec!["backup: failed (disk full)".into()],
        }
    }

    fn target(channel: Channel) -> Target {
        Target {
            channel,
            url: "https://hc.example/ping/abc/".into(),
            from: "$URL".into(),
        }
    }

    #[test]
    fn healthchecks_gets_start_success_and_fail_urls() {
        let url = |status| request(&target(Channel::Healthchecks), &summary(status)).1;
        assert_eq!(url("started"), "https://hc.example/ping/abc/start");
        assert_eq!(url("completed"), "https://hc.example/ping/abc");
        assert_eq!(url("failed"), "https://hc.example/ping/abc/fail");
    }

    #[test]
    fn ntfy_gets_the_headline_and_a_high_priority_on_failure() {
        let (_, _, headers, body) = request(&target(Channel::Ntfy), &summary("failed"));
        assert!(
            body.starts_with("hookrun manual 1.2.3 on app: failed: hook backup: disk full"),
            "{body}"
        );
        assert!(body.contains("db down 1.5 s"), "{body}");
        assert!(headers.contains(&("priority", "high".to_string())));
    }

    #[test]
    fn a_target_never_shows_its_url() {
        let shown = format!("{:?}", target(Channel::Webhook));
        assert!(!shown.contains("hc.example"), "{shown}");
    }
}
