//! `hookrun ui`: the operator's web UI, served by the binary itself — the backups and their runs, the operations
//! (back up, verify, restore, roll back, upgrade, recover) with live progress, and the history. Pages are rendered on
//! the server (`pages`, `charts`), a small embedded script (`assets/ui.js`) follows a running operation through
//! server-sent events; nothing is fetched from elsewhere. Every page reads the catalog through the same calls as the
//! CLI and every operation runs the CLI's command (`operations`). Who may use it: `auth`.

pub mod auth;
pub mod charts;
pub mod operations;
pub mod pages;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, Request as HttpRequest, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use hookrun_catalog::{BackupFilter, BackupStatus, Catalog, RunKind};

use crate::commands::restore::Pick;
use crate::config::Check;
use crate::exit::UsageError;
use crate::session::{OpenCatalog, ReadSession, Session};
use auth::Secret;
use operations::{Operations, Refusal, Request};
use pages::Page;

/// Where `hookrun ui` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

/// What the server shares with every request.
struct App {
    config: PathBuf,
    secret: Secret,
    operations: Operations,
}

/// A server bound to its address, not yet serving.
pub struct Ui {
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    /// The URL to open, with the token when it was generated (a token from a file is not printed).
    pub url: String,
    /// The address it listens on.
    pub address: SocketAddr,
}

impl Ui {
    /// Checks `hooks.toml` (as `list` does) and the listen address — a non-loopback one needs `token_file` — then
    /// binds.
    pub async fn bind(config: &Path, listen: SocketAddr, token_file: Option<&Path>) -> anyhow::Result<Self> {
        ReadSession::open(config, Check::Shape, OpenCatalog::No)?;
        if !listen.ip().is_loopback() && token_file.is_none() {
            return Err(UsageError(format!(
                "--listen {listen} is reachable from other machines: pass --token-file FILE too (a secret only its \
                 owner can read), and put TLS in front of it"
            ))
            .into());
        }
        let (secret, printed) = match token_file {
            Some(path) => (Secret::from_file(path)?, false),
            None => (Secret::generate()?, true),
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let address = listener.local_addr()?;
        let url = if printed {
            format!("http://{address}/?token={}", secret.token())
        } else {
            format!("http://{address}/")
        };
        let app = Arc::new(App {
            config: std::path::absolute(config)?,
            secret,
            operations: Operations::default(),
        });
        Ok(Self {
            listener,
            app,
            url,
            address,
        })
    }

    /// Serves until `shutdown` completes, then waits for a running operation to end (it brings its services back).
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let app = self.app.clone();
        axum::serve(self.listener, router(self.app))
            .with_graceful_shutdown(shutdown)
            .await?;
        tokio::task::spawn_blocking(move || app.operations.wait()).await?;
        Ok(())
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(backups))
        .route("/backups/{id}", get(backup))
        .route("/backups/{id}/restore", get(restore_preview))
        .route("/rollback", get(rollback_preview))
        .route("/history", get(history))
        .route("/operations", post(start_operation))
        .route("/operations/{id}", get(operation))
        .route("/operations/{id}/events", get(operation_events))
        .route("/login", get(login_page).post(login))
        .route(
            "/assets/ui.css",
            get(|| async { asset("text/css", include_str!("assets/ui.css")) }),
        )
        .route(
            "/assets/ui.js",
            get(|| async { asset("text/javascript", include_str!("assets/ui.js")) }),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Every response: no caching, no framing, scripts and styles from here only, no referrer to other sites
/// (`no-referrer` would make browsers send `Origin: null` on this origin's own forms). Every request but the assets
/// and the sign-in: the token (`?token=` once, then the cookie); every POST: from this origin.
async fn guard(State(app): State<Arc<App>>, request: HttpRequest, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let public = path.starts_with("/assets/") || path == "/login";
    let refused = (request.method() == Method::POST)
        .then(|| auth::cross_site(request.headers()))
        .flatten();
    let mut response = if let Some(why) = refused {
        pages::error(StatusCode::FORBIDDEN, &why, None)
    } else if let Some(token) = query_token(request.uri().query()) {
        if app.secret.is_token(&token) {
            signed_in_at(&app, &path)
        } else {
            pages::login(StatusCode::UNAUTHORIZED, Some("that token is not this server's"))
        }
    } else if public || app.secret.signed_in(request.headers()) {
        next.run(request).await
    } else {
        pages::login(StatusCode::UNAUTHORIZED, None)
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The redirect to `path` that signs the browser in (sets the token's cookie).
fn signed_in_at(app: &App, path: &str) -> Response {
    let mut response = Redirect::to(path).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&app.secret.cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// The name-value pairs of a query string or a form body (a name may repeat: `only`).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(bytes: &[u8]) -> Self {
        Self(form_urlencoded::parse(bytes).into_owned().collect())
    }

    fn query(query: Option<String>) -> Self {
        Self::parse(query.unwrap_or_default().as_bytes())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A request that ends on the error page: its status and what went wrong, one line.
struct PageError(StatusCode, String);

impl PageError {
    fn bad(why: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, why.into())
    }

    fn failed(e: impl std::fmt::Display) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }

    fn not_found(what: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, what.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        pages::error(self.0, &self.1, None)
    }
}

type PageResult = Result<Response, PageError>;

/// What a page reads: the configuration (as `list` checks it) and the catalog, when there is one.
fn read(app: &App) -> Result<ReadSession, PageError> {
    ReadSession::open(&app.config, Check::Shape, OpenCatalog::IfExists).map_err(|e| PageError::failed(format!("{e:#}")))
}

fn page(page: Page) -> PageResult {
    Ok(Html(page.render().into_string()).into_response())
}

/// An id from the URL; anything else is a page that does not exist.
fn id_in_url<T: std::str::FromStr>(text: &str) -> Result<T, PageError> {
    text.parse().map_err(|_| PageError::not_found("there is no such page"))
}

/// A backup by id, or the 404 page.
fn find_backup(catalog: Option<&Catalog>, id: i64) -> Result<hookrun_catalog::BackupRow, PageError> {
    catalog
        .map(|c| c.backup(id))
        .transpose()
        .map_err(PageError::failed)?
        .flatten()
        .ok_or_else(|| PageError::not_found(format!("no backup with id {id}")))
}

async fn backups(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> PageResult {
    let params = Params::query(query);
    let session = read(&app)?;
    let kind = params
        .get("type")
        .filter(|k| ["manual", "pre-upgrade"].contains(k))
        .map(str::to_string);
    let status = params.get("status").and_then(BackupStatus::parse);
    // One read of every backup: the chart and the rollback button need them all, the table the filter's.
    let all = match &session.catalog {
        Some(c) => c.list_backups(&BackupFilter::default()).map_err(PageError::failed)?,
        None => Vec::new(),
    };
    let rows: Vec<_> = all
        .iter()
        .filter(|r| kind.as_deref().is_none_or(|k| r.kind.as_str() == k) && status.is_none_or(|s| r.status == s))
        .cloned()
        .collect();
    let interrupted = session.interrupted_runs().unwrap_or_default();
    let trend = trend(session.catalog.as_deref(), &all);
    page(pages::backups(&pages::BackupsView {
        rows: &rows,
        rollback_points: all.iter().any(|r| r.kind == RunKind::PreUpgrade),
        trend: &trend,
        kind: kind.as_deref(),
        status: status.map(|s| s.as_str()),
        upgrade: session.config.upgrade.command.is_some(),
        version: session.config.runner.version.as_deref(),
        interrupted: !interrupted.is_empty(),
        csrf: app.secret.csrf(),
    }))
}

/// The backups on the trend chart: the newest completed ones, each with its run's duration.
fn trend(catalog: Option<&Catalog>, all: &[hookrun_catalog::BackupRow]) -> Vec<charts::Point> {
    const NEWEST: usize = 60;
    let completed: Vec<_> = all.iter().filter(|r| r.status == BackupStatus::Completed).collect();
    completed[completed.len().saturating_sub(NEWEST)..]
        .iter()
        .filter_map(|row| {
            let run = catalog?.run(row.run_id?).ok()??;
            Some(charts::Point {
                id: row.id,
                size: row.size?.max(0) as u64,
                duration_ms: run.duration_ms?.max(0) as u64,
            })
        })
        .collect()
}

async fn backup(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> PageResult {
    let id = id_in_url(&id)?;
    let session = read(&app)?;
    let row = find_backup(session.catalog.as_deref(), id)?;
    let (shown, _) = crate::commands::show::show(&session, row.id).map_err(|e| PageError::failed(format!("{e:#}")))?;
    page(pages::backup(&shown, app.secret.csrf()))
}

/// The dry run of a restore (what it stops, replaces, how much), with the `--only` choices and the confirmation.
async fn restore_preview(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let id = id_in_url(&id)?;
    let only = Params::query(query).all("only");
    preview(&app, Pick::Id(id), only, false).await
}

/// The dry run of a rollback (to the newest rollback point, or `?to=ID`) and its confirmation.
async fn rollback_preview(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> PageResult {
    match Params::query(query).get("to") {
        None => preview(&app, Pick::NewestPreUpgrade, Vec::new(), true).await,
        Some(id) => preview(&app, Pick::Id(id_in_url(id)?), Vec::new(), true).await,
    }
}

async fn preview(app: &Arc<App>, pick: Pick, only: Vec<String>, redeploy: bool) -> PageResult {
    if let Pick::Id(id) = pick {
        find_backup(read(app)?.catalog.as_deref(), id)?;
    }
    let config = app.config.clone();
    let explicit = matches!(pick, Pick::Id(_));
    // A dry run as `restore --dry-run` makes it: the lock for a moment, nothing changed.
    let planned = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let session = Session::lock(&config, Check::Shape)?;
        let plan = crate::commands::restore::plan(&session, pick, only, redeploy, true)?;
        let sources = session.catalog.backup_sources(plan.backup)?;
        Ok((plan, sources))
    })
    .await
    .map_err(PageError::failed)?;
    let (plan, sources) = planned.map_err(|e| match e.downcast_ref::<crate::lock::LockHeld>() {
        Some(held) => PageError(StatusCode::CONFLICT, format!("busy: {}", held.holder)),
        None => PageError::bad(format!("{e:#}")),
    })?;
    page(pages::restore_preview(
        &plan,
        &sources,
        redeploy,
        explicit,
        app.secret.csrf(),
    ))
}

async fn history(State(app): State<Arc<App>>) -> PageResult {
    let session = read(&app)?;
    let (runs, upgrades) = match &session.catalog {
        Some(c) => (
            c.recent_runs(200).map_err(PageError::failed)?,
            c.upgrades(false).map_err(PageError::failed)?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let interrupted: Vec<i64> = session
        .interrupted_runs()
        .unwrap_or_default()
        .iter()
        .map(|r| r.id)
        .collect();
    page(pages::history(
        &runs,
        &upgrades,
        &interrupted,
        &app.operations.list(),
        app.secret.csrf(),
    ))
}

/// Starts the operation the form names, after the CSRF check; the backup and the `--only` paths must be the
/// catalog's (nothing from the browser is taken as a path).
async fn start_operation(State(app): State<Arc<App>>, body: Bytes) -> PageResult {
    let form = Params::parse(&body);
    if !form.get("csrf").is_some_and(|t| app.secret.is_csrf(t)) {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            "refused: the form's CSRF token is missing or wrong".into(),
        ));
    }
    let id: Option<i64> = form
        .get("id")
        .map(|id| id.parse().map_err(|_| PageError::bad("the backup id is not a number")))
        .transpose()?;
    let session = read(&app)?;
    let catalog = session.catalog.as_deref();
    let backup = || -> Result<i64, PageError> {
        let id = id.ok_or_else(|| PageError::bad("which backup? the form names none"))?;
        find_backup(catalog, id).map(|row| row.id)
    };
    let request = match form.get("action") {
        Some("backup") => Request::Backup,
        Some("recover") => Request::Recover,
        Some("verify") => Request::Verify { id: backup()? },
        Some("restore") => {
            let id = backup()?;
            let only = form.all("only");
            let known: Vec<String> = match catalog {
                Some(c) => c.backup_sources(id).map_err(PageError::failed)?,
                None => Vec::new(),
            }
            .into_iter()
            .map(|s| s.archive_path)
            .collect();
            if let Some(unknown) = only.iter().find(|p| !known.contains(p)) {
                return Err(PageError::bad(format!("backup {id} holds no path {unknown:?}")));
            }
            Request::Restore { id, only }
        }
        Some("rollback") => Request::Rollback {
            to: id.map(|_| backup()).transpose()?,
        },
        Some("upgrade") if session.config.upgrade.command.is_some() => match (form.get("from"), form.get("to")) {
            (Some(from), Some(to)) => Request::Upgrade {
                from: from.trim().to_string(),
                to: to.trim().to_string(),
            },
            _ => return Err(PageError::bad("an upgrade needs both versions")),
        },
        _ => return Err(PageError::bad("no such operation")),
    };
    match app.operations.start(app.config.clone(), request).await {
        Ok(op) => Ok(Redirect::to(&format!("/operations/{}", op.snapshot().id)).into_response()),
        Err(Refusal::Busy(busy)) => Err(PageError(StatusCode::CONFLICT, busy)),
        Err(Refusal::Failed(why)) => Err(PageError::bad(why)),
    }
}

async fn operation(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> PageResult {
    let op = app
        .operations
        .get(id_in_url(&id)?)
        .ok_or_else(|| PageError::not_found("no such operation"))?;
    page(pages::operation(&op.snapshot()))
}

/// The operation's state as JSON, now and after every change, until it has ended.
async fn operation_events(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> PageResult {
    let op = app
        .operations
        .get(id_in_url(&id)?)
        .ok_or_else(|| PageError::not_found("no such operation"))?;
    let changes = op.subscribe();
    let stream = futures_util::stream::unfold((op, changes, false), |(op, mut changes, ended)| async move {
        if ended {
            return None;
        }
        let snapshot = op.snapshot();
        let ended = snapshot.finished.is_some();
        let event = serde_json::to_string(&snapshot).map(|json| SseEvent::default().data(json));
        if !ended {
            // Coalesce bursts of progress: at most a few updates a second.
            let _ = changes.changed().await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        Some((event, (op, changes, ended)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

async fn login_page() -> Response {
    pages::login(StatusCode::OK, None)
}

/// The sign-in form (for a token from `--token-file`): the cookie, then the backups.
async fn login(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let form = Params::parse(&body);
    if !form.get("token").is_some_and(|t| app.secret.is_token(t.trim())) {
        return pages::login(StatusCode::UNAUTHORIZED, Some("that token is not this server's"));
    }
    signed_in_at(&app, "/")
}

async fn not_found() -> Response {
    pages::error(StatusCode::NOT_FOUND, "there is no such page", None)
}
