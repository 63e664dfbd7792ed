//! [`Api`]: what the router is built from (a sender, an authorizer, limits), and the
//! router itself: the `/v1` routes behind authentication and the per-token rate limit,
//! the probes, `/metrics` and `/openapi.json`, all under one access log.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::PrometheusHandle;
use utoipa::{Modify as _, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;
use webhook_sender::Sender;

use crate::auth::{Authorize, Principal, bearer};
use crate::error::ApiError;
use crate::openapi::{ApiDoc, Links};
use crate::routes;

/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The default per-token request rate: 1,000 a second (with a burst of as many).
pub const DEFAULT_RATE_PER_TOKEN: u32 = 1_000;

/// What the router is built from.
pub struct Api {
    sender: Sender,
    authorizer: Arc<dyn Authorize>,
    body_limit: usize,
    rate_per_token: Option<NonZeroU32>,
    metrics: Option<PrometheusHandle>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("body_limit", &self.body_limit)
            .field("rate_per_token", &self.rate_per_token)
            .finish_non_exhaustive()
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) sender: Sender,
    pub(crate) authorizer: Arc<dyn Authorize>,
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    pub(crate) metrics: Option<PrometheusHandle>,
}

impl Api {
    /// The API of `sender`, its callers authenticated by `authorizer`.
    #[must_use]
    pub fn new(sender: Sender, authorizer: impl Authorize) -> Self {
        Self {
            sender,
            authorizer: Arc::new(authorizer),
            body_limit: DEFAULT_BODY_LIMIT,
            rate_per_token: NonZeroU32::new(DEFAULT_RATE_PER_TOKEN),
            metrics: None,
        }
    }

    /// Bodies over `bytes` are refused with 413. Default 1 MiB.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Each credential may make this many requests a second (bursts of as many); more
    /// are answered 429 with `Retry-After`. `None` turns the limit off. Default 1,000.
    #[must_use]
    pub fn rate_per_token(mut self, per_second: Option<NonZeroU32>) -> Self {
        self.rate_per_token = per_second;
        self
    }

    /// Serves `GET /metrics` from this Prometheus recorder's handle. Without one,
    /// `/metrics` answers an empty page.
    #[must_use]
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// The OpenAPI 3.1 document of the routes, as generated from the handlers.
    #[must_use]
    pub fn openapi() -> utoipa::openapi::OpenApi {
        let mut openapi = routes::v1(OpenApiRouter::with_openapi(ApiDoc::openapi()))
            .merge(routes::meta::routes())
            .split_for_parts()
            .1;
        Links.modify(&mut openapi);
        openapi
    }

    /// The router: mount it in a platform's axum app or serve it as it is.
    pub fn router(self) -> Router {
        let state = AppState {
            sender: self.sender,
            authorizer: self.authorizer,
            limiter: self
                .rate_per_token
                .map(|rate| Arc::new(RateLimiter::keyed(Quota::per_second(rate)))),
            metrics: self.metrics,
        };
        let (v1, mut openapi) = routes::v1(OpenApiRouter::with_openapi(ApiDoc::openapi()))
            .layer(middleware::from_fn_with_state(state.clone(), authenticate))
            .merge(routes::meta::routes())
            .split_for_parts();
        let v1 = v1.merge(crate::console::routes());
        Links.modify(&mut openapi);
        let openapi = Arc::new(openapi);
        v1.route(
            "/openapi.json",
            axum::routing::get(move || {
                let openapi = Arc::clone(&openapi);
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(self.body_limit))
        .layer(middleware::from_fn(access_log))
        .with_state(state)
    }
}

/// Authenticates the caller and spends one request of its budget; the handler finds the
/// [`Principal`] in the request's extensions.
async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer(request.headers()).ok_or_else(ApiError::unauthorized)?;
    let principal = state
        .authorizer
        .authorize(token)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if let Some(limiter) = &state.limiter
        && let Err(not_until) = limiter.check_key(&principal.credential)
    {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        return Err(ApiError::rate_limited(wait.as_secs().saturating_add(1)));
    }
    request.extensions_mut().insert(principal.clone());
    let mut response = next.run(request).await;
    // For the access log.
    response.extensions_mut().insert(principal);
    Ok(response)
}

/// One line per request: method, route, status, latency and the credential's id (never
/// a token, a header or a body).
async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let credential = response
        .extensions()
        .get::<Principal>()
        .map(|p| p.credential.clone());
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    tracing::info!(
        target: "webhook_server::access",
        method = %method,
        route = %route,
        status,
        latency_ms,
        credential = credential.as_deref().unwrap_or("-"),
        "request"
    );
    metrics::counter!(
        "webhook_api_requests_total",
        "method" => method.to_string(),
        "route" => route,
        "status" => status.to_string(),
    )
    .increment(1);
    response.into_response()
}
