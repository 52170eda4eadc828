//! The HTTP plumbing every typed call goes through: one configured connection pool, the API
//! key header, per-request timeouts, error decoding, ETags, and a raw escape hatch for tests
//! that must send what the typed API never would.

use std::fmt;
use std::time::Duration;

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ClientError;

/// Default time a whole request may take (the change stream is exempt).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time to establish a TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A typed client of the promptstore HTTP API. Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Scheme, host, port and optional path prefix, without a trailing slash.
    base: String,
    auth: Option<HeaderValue>,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the API key.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("has_api_key", &self.auth.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Configures a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: String,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("has_api_key", &!self.api_key.is_empty())
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl ClientBuilder {
    /// `base_url` is where the server listens (`http://127.0.0.1:5110`, optionally with a path
    /// prefix); `api_key` is `ps_<id>_<secret>`, or empty to send no key at all.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        ClientBuilder {
            base_url: base_url.into(),
            api_key: api_key.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: concat!("promptstore-client/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// The longest a request (sending and reading the whole answer) may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest establishing a connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    pub fn build(self) -> Result<Client, ClientError> {
        let base = normalize_base_url(&self.base_url)?;
        let auth = if self.api_key.is_empty() {
            None
        } else {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", self.api_key)).map_err(|_| {
                    ClientError::InvalidArgument(
                        "the API key contains characters that cannot be sent in a header".into(),
                    )
                })?;
            value.set_sensitive(true);
            Some(value)
        };
        // reqwest is built without a bundled crypto provider (see DEPENDENCIES.md): install
        // ring once per process; later calls are no-ops.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // Without it a small request can wait 40 ms on Nagle + delayed ACK.
            .tcp_nodelay(true)
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Client {
            http,
            base,
            auth,
            timeout: self.timeout,
        })
    }
}

fn normalize_base_url(raw: &str) -> Result<String, ClientError> {
    let trimmed = raw.trim();
    let url = reqwest::Url::parse(trimmed).map_err(|e| {
        ClientError::InvalidArgument(format!("invalid server URL `{trimmed}`: {e}"))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ClientError::InvalidArgument(format!(
            "invalid server URL `{trimmed}`: the scheme must be http or https"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ClientError::InvalidArgument(format!(
            "invalid server URL `{trimmed}`: it must not have a query or a fragment"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A successful answer with its `ETag`, for resources that have one.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged<T> {
    pub value: T,
    /// The `ETag` header exactly as sent (quotes included), to pass back as-is.
    pub etag: Option<String>,
}

/// The answer to a conditional request (`If-None-Match`).
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched<T> {
    /// The resource changed (or no ETag was given): here it is.
    Modified(Tagged<T>),
    /// `304 Not Modified`: what the caller holds is current.
    NotModified,
}

/// An answer exactly as received, for tests and for routes the typed API does not cover.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value, when present and readable as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ClientError::Decode(format!(
                "HTTP {} body is not the expected JSON: {e}",
                self.status
            ))
        })
    }

    /// The server's error body, when the status is an error.
    pub fn error(&self) -> Option<promptstore_types::ErrorBody> {
        (self.status >= 400).then(|| crate::error::decode_error_body(self.status, &self.body))
    }
}

/// What `call` got back, before it is interpreted.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub(crate) fn etag(&self) -> Option<String> {
        self.headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Turns a non-success status into the API error it carries.
    pub(crate) fn ok(self) -> Result<Answer, ClientError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(ClientError::from_response(self.status.as_u16(), &self.body))
        }
    }

    pub(crate) fn decode<T: DeserializeOwned>(&self, what: &str) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode(format!("{what}: {e}")))
    }
}

impl Client {
    /// A client with the default settings; see [`ClientBuilder`] for more.
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Result<Client, ClientError> {
        ClientBuilder::new(base_url, api_key).build()
    }

    pub fn builder(base_url: impl Into<String>, api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(base_url, api_key)
    }

    /// The server URL this client talks to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The same server with another key (or none, with `""`), sharing the connection pool.
    pub fn with_api_key(&self, api_key: &str) -> Result<Client, ClientError> {
        let auth = if api_key.is_empty() {
            None
        } else {
            let mut value = HeaderValue::from_str(&format!("Bearer {api_key}")).map_err(|_| {
                ClientError::InvalidArgument(
                    "the API key contains characters that cannot be sent in a header".into(),
                )
            })?;
            value.set_sensitive(true);
            Some(value)
        };
        Ok(Client {
            auth,
            ..self.clone()
        })
    }

    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn auth_header(&self) -> Option<&HeaderValue> {
        self.auth.as_ref()
    }

    /// Sends one request and reads the whole answer, whatever its status.
    pub(crate) async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(HeaderName, HeaderValue)],
        json_body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        let body = json_body.map(|b| ("application/json", b));
        self.call_with_body(method, path_and_query, headers, body)
            .await
    }

    /// Sends one request with a body of any content type (NDJSON uploads) and reads the
    /// whole answer, whatever its status.
    pub(crate) async fn call_with_body(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Answer, ClientError> {
        let mut request = self
            .http
            .request(method, self.url(path_and_query))
            .timeout(self.timeout)
            .header(ACCEPT, "application/json");
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        for (name, value) in headers {
            request = request.header(name.clone(), value.clone());
        }
        if let Some((content_type, body)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(body);
        }
        let response = request.send().await.map_err(ClientError::Transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(ClientError::Transport)?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// GET a JSON resource.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, &[], None)
            .await?
            .ok()?
            .decode(path)
    }

    /// GET a JSON resource with its ETag.
    pub(crate) async fn get_tagged<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Tagged<T>, ClientError> {
        let answer = self.call(Method::GET, path, &[], None).await?.ok()?;
        Ok(Tagged {
            value: answer.decode(path)?,
            etag: answer.etag(),
        })
    }

    /// A conditional GET: `304` becomes [`Fetched::NotModified`].
    pub(crate) async fn get_conditional<T: DeserializeOwned>(
        &self,
        path: &str,
        if_none_match: Option<&str>,
    ) -> Result<Fetched<T>, ClientError> {
        let mut headers = Vec::new();
        if let Some(etag) = if_none_match {
            let value = HeaderValue::from_str(etag).map_err(|_| {
                ClientError::InvalidArgument(format!("`{etag}` is not a valid ETag"))
            })?;
            headers.push((reqwest::header::IF_NONE_MATCH, value));
        }
        let answer = self.call(Method::GET, path, &headers, None).await?;
        if answer.status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        let answer = answer.ok()?;
        Ok(Fetched::Modified(Tagged {
            value: answer.decode(path)?,
            etag: answer.etag(),
        }))
    }

    /// Sends a JSON body and decodes the JSON answer.
    pub(crate) async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send_json_with(method, path, &[], body).await
    }

    pub(crate) async fn send_json_with<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = encode_body(body)?;
        self.call(method, path, headers, Some(bytes))
            .await?
            .ok()?
            .decode(path)
    }

    /// Sends a request without a body and decodes the JSON answer.
    pub(crate) async fn send_empty<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<T, ClientError> {
        self.call(method, path, &[], None).await?.ok()?.decode(path)
    }

    /// Sends exactly what it is given (plus the API key, unless `headers` carries
    /// `Authorization` or `X-API-Key`) and returns the answer whatever its status. No
    /// `Content-Type` is added: set it in `headers` when the test wants one.
    pub async fn raw(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse, ClientError> {
        if !path_and_query.starts_with('/') {
            return Err(ClientError::InvalidArgument(format!(
                "the path `{path_and_query}` must start with `/`"
            )));
        }
        let mut request = self
            .http
            .request(method, self.url(path_and_query))
            .timeout(self.timeout);
        let mut caller_authenticates = false;
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ClientError::InvalidArgument(format!("`{name}` is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                ClientError::InvalidArgument(format!("`{value}` is not a valid header value"))
            })?;
            if name == AUTHORIZATION || name.as_str() == promptstore_types::API_KEY_HEADER {
                caller_authenticates = true;
            }
            request = request.header(name, value);
        }
        if let (false, Some(auth)) = (caller_authenticates, &self.auth) {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(ClientError::Transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(ClientError::Transport)?
            .to_vec();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

pub(crate) fn encode_body<B: Serialize>(body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body)
        .map_err(|e| ClientError::InvalidArgument(format!("cannot encode the request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_validated_and_normalized() {
        let ok = |raw: &str, expected: &str| {
            assert_eq!(
                normalize_base_url(raw).ok().as_deref(),
                Some(expected),
                "{raw}"
            )
        };
        ok("http://127.0.0.1:5110", "http://127.0.0.1:5110");
        ok("http://127.0.0.1:5110/", "http://127.0.0.1:5110");
        ok(
            " https://prompts.example.com/ps/ ",
            "https://prompts.example.com/ps",
        );
        for bad in [
            "",
            "127.0.0.1:5110",
            "ftp://host",
            "http://host/?a=1",
            "not a url",
        ] {
            assert!(normalize_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let client = Client::new("http://127.0.0.1:1", "ps_abcdefabcdef_secretsecret").unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("has_api_key: true"), "{shown}");
    }

    #[test]
    fn bad_keys_are_refused_before_sending() {
        let err = Client::new("http://127.0.0.1:1", "ps_x\nInjected: yes").unwrap_err();
        assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    }
}
