//! The dashboard's login as a browser lives it: `POST /api/session` trades the dashboard
//! password or an admin token for an HttpOnly cookie; the cookie alone then works on the admin
//! API with the credential's scopes and actor, changes need the `x-rungate-dashboard` header,
//! and logging out or revoking the admin token ends the session.

use reqwest::Method;
use serde_json::{Value, json};

use crate::gates::{audit_kinds, declaring, gate_id, gated_agent};
use crate::harness::{self, ADMIN_PASSWORD, Harness, TestResult};

/// An answer of the admin API: status, `Set-Cookie` and JSON body (`Null` when empty).
struct Answer {
    status: u16,
    set_cookie: Option<String>,
    body: Value,
}

impl Answer {
    async fn from(response: reqwest::Response) -> TestResult<Answer> {
        let status = response.status().as_u16();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            set_cookie,
            body,
        })
    }

    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

/// `POST /api/session` as the dashboard sends it (with its header).
async fn log_in(h: &Harness, body: Value) -> TestResult<Answer> {
    let response = h
        .http
        .post(format!("{}/api/session", h.url))
        .header("x-rungate-dashboard", "1")
        .json(&body)
        .send()
        .await?;
    Answer::from(response).await
}

/// A browser holding a session cookie, next to a cookie of some other site feature, as real
/// browsers send them.
struct Browser<'h> {
    h: &'h Harness,
    secret: String,
}

impl<'h> Browser<'h> {
    /// Logs in with `body`, which must succeed.
    async fn open(h: &'h Harness, body: Value) -> TestResult<(Browser<'h>, Answer)> {
        let answer = log_in(h, body).await?;
        assert_eq!(answer.status, 201, "login: {}", answer.body);
        let set_cookie = answer.set_cookie.clone().ok_or("no Set-Cookie")?;
        let secret = set_cookie
            .split(';')
            .next()
            .and_then(|pair| pair.strip_prefix("rungate_session="))
            .ok_or_else(|| format!("not the session cookie: {set_cookie}"))?
            .to_owned();
        Ok((Browser { h, secret }, answer))
    }

    /// A request carrying only the cookie, and the dashboard header when `dashboard` is set.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        dashboard: bool,
    ) -> TestResult<Answer> {
        let mut request = self
            .h
            .http
            .request(method, format!("{}{path}", self.h.url))
            .header(
                "cookie",
                format!("theme=dark; rungate_session={}; lang=en", self.secret),
            );
        if dashboard {
            request = request.header("x-rungate-dashboard", "1");
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Answer::from(request.send().await?).await
    }

    async fn get(&self, path: &str) -> TestResult<Answer> {
        self.send(Method::GET, path, None, false).await
    }

    /// A change as the dashboard makes it, header included.
    async fn post(&self, path: &str, body: Value) -> TestResult<Answer> {
        self.send(Method::POST, path, Some(body), true).await
    }
}

/// Creates an admin token with `scopes`; its (id, secret).
async fn admin_token(h: &Harness, scopes: Value) -> TestResult<(String, String)> {
    let created = h
        .admin_post(
            "/api/admin-tokens",
            json!({"name": "dashboard-user", "scopes": scopes}),
        )
        .await?;
    let id = created["data"]["id"].as_str().ok_or("no id")?.to_owned();
    let token = created["data"]["token"]
        .as_str()
        .ok_or("no token")?
        .to_owned();
    Ok((id, token))
}

/// A pending approval request in a fresh run; its id.
async fn pending_gate(h: &Harness, run_id: &str) -> TestResult<String> {
    let token = gated_agent(h, run_id, json!({"require_approval": ["execute_code"]})).await?;
    let asked = h
        .chat(
            &token,
            declaring("execute_code", "run it"),
            &[("x-rungate-run-id", run_id)],
        )
        .await?;
    assert_eq!(asked.status, 202, "{}", asked.text);
    Ok(gate_id(&asked))
}

fn seconds_from_now(rfc3339: &Value) -> TestResult<i64> {
    let at = time::OffsetDateTime::parse(
        rfc3339.as_str().ok_or("not a string")?,
        &time::format_description::well_known::Rfc3339,
    )?;
    Ok((at - time::OffsetDateTime::now_utc()).whole_seconds())
}

#[tokio::test]
async fn a_password_login_sets_an_http_only_cookie_that_alone_reads_the_api_until_logout()
-> TestResult {
    let h = harness::start().await?;
    let (browser, login) = Browser::open(&h, json!({"password": ADMIN_PASSWORD})).await?;
    assert_eq!(login.body["data"]["actor"], "admin:dashboard");
    assert_eq!(
        login.body["data"]["scopes"],
        json!(["read", "write", "approve"])
    );
    let left = seconds_from_now(&login.body["data"]["expires_at"])?;
    assert!((43_100..=43_200).contains(&left), "expires in {left} s");
    let set_cookie = login.set_cookie.as_deref().unwrap_or_default();
    let attributes: Vec<&str> = set_cookie.split(';').map(str::trim).skip(1).collect();
    for wanted in [
        "Path=/",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Max-Age=43200",
    ] {
        assert!(attributes.contains(&wanted), "{wanted} in {set_cookie}");
    }
    assert!(browser.secret.starts_with("rg_ses_") && browser.secret.len() >= 7 + 43);
    for bytes in h.stored_bytes().await? {
        assert!(
            !bytes
                .windows(browser.secret.len())
                .any(|w| w == browser.secret.as_bytes()),
            "session secret stored in clear"
        );
    }

    // The cookie alone reads the admin API and says who it is.
    let runs = browser.get("/api/runs").await?;
    assert_eq!(runs.status, 200, "{}", runs.body);
    assert!(runs.body["data"].is_array());
    let me = browser.get("/api/session").await?;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["data"], login.body["data"]);
    let nobody = h.http.get(format!("{}/api/runs", h.url)).send().await?;
    assert_eq!(nobody.status(), 401);

    // A bearer credential says who it is too; it does not expire.
    let bearer: Value = h
        .http
        .get(format!("{}/api/session", h.url))
        .bearer_auth(ADMIN_PASSWORD)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        bearer["data"],
        json!({"actor": "admin:dashboard", "scopes": ["read", "write", "approve"], "expires_at": null})
    );

    let out = browser
        .send(Method::DELETE, "/api/session", None, false)
        .await?;
    assert_eq!(out.status, 204);
    assert_eq!(
        out.set_cookie.as_deref(),
        Some("rungate_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
    );
    assert_eq!(browser.get("/api/runs").await?.status, 401);
    assert_eq!(browser.get("/api/session").await?.status, 401);

    // Logging out without a session still clears the cookie.
    let again = Answer::from(
        h.http
            .delete(format!("{}/api/session", h.url))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(again.status, 204);
    assert!(
        again
            .set_cookie
            .as_deref()
            .is_some_and(|c| c.starts_with("rungate_session=;") && c.ends_with("Max-Age=0"))
    );
    Ok(())
}

#[tokio::test]
async fn wrong_or_revoked_credentials_are_refused_and_a_login_needs_the_dashboard_header()
-> TestResult {
    let h = harness::start().await?;
    let wrong = log_in(&h, json!({"password": "guess"})).await?;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_api_key"));
    assert!(wrong.set_cookie.is_none());
    let unknown = log_in(&h, json!({"token": "rg_adm_not-a-real-token"})).await?;
    assert_eq!(unknown.status, 401);
    let password_as_token = log_in(&h, json!({"token": ADMIN_PASSWORD})).await?;
    assert_eq!(password_as_token.status, 401);

    let (id, token) = admin_token(&h, json!(["read"])).await?;
    h.admin_post(&format!("/api/admin-tokens/{id}/revoke"), json!({}))
        .await?;
    let revoked = log_in(&h, json!({"token": token})).await?;
    assert_eq!((revoked.status, revoked.code()), (401, "invalid_api_key"));

    for body in [
        json!({"password": ADMIN_PASSWORD, "token": token}),
        json!({}),
        json!({"password": ADMIN_PASSWORD, "remember_me": true}),
    ] {
        let refused = log_in(&h, body.clone()).await?;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "invalid_request"),
            "{body}"
        );
    }

    // A cross-site form cannot set the header, so a login without it is refused outright.
    let forged = Answer::from(
        h.http
            .post(format!("{}/api/session", h.url))
            .json(&json!({"password": ADMIN_PASSWORD}))
            .send()
            .await?,
    )
    .await?;
    assert_eq!((forged.status, forged.code()), (403, "csrf_header_missing"));
    assert!(forged.set_cookie.is_none());

    let made_up = Browser {
        h: &h,
        secret: "rg_ses_made-up".into(),
    };
    assert_eq!(made_up.get("/api/runs").await?.status, 401);
    Ok(())
}

#[tokio::test]
async fn a_sessions_approval_needs_the_dashboard_header_and_is_recorded_under_its_actor()
-> TestResult {
    let h = harness::start().await?;
    let (id, token) = admin_token(&h, json!(["read", "approve"])).await?;
    let (browser, login) = Browser::open(&h, json!({"token": token})).await?;
    let actor = format!("admin:{id}");
    assert_eq!(login.body["data"]["actor"], actor.as_str());
    assert_eq!(login.body["data"]["scopes"], json!(["read", "approve"]));

    let gate = pending_gate(&h, "session-approval").await?;
    let path = format!("/api/approval-requests/{gate}/approve");
    let forged = browser
        .send(Method::POST, &path, Some(json!({})), false)
        .await?;
    assert_eq!((forged.status, forged.code()), (403, "csrf_header_missing"));
    assert!(forged.message().contains("x-rungate-dashboard"));
    let pending = browser
        .get(&format!("/api/approval-requests/{gate}"))
        .await?;
    assert_eq!(pending.body["data"]["status"], "pending", "not decided");

    let approved = browser
        .post(&path, json!({"reason": "reviewed on the dashboard"}))
        .await?;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["data"]["decided_by"], actor.as_str());
    let kinds = audit_kinds(&h, "session-approval").await?;
    assert!(
        kinds.contains(&("approval.approved".into(), actor.clone())),
        "{kinds:?}"
    );

    // Bearer credentials need no header, as before.
    let by_bearer = h
        .http
        .post(format!("{}/api/admin-tokens", h.url))
        .bearer_auth(ADMIN_PASSWORD)
        .json(&json!({"name": "ci", "scopes": ["read"]}))
        .send()
        .await?;
    assert_eq!(by_bearer.status(), 201);
    Ok(())
}

#[tokio::test]
async fn a_read_only_tokens_session_reads_but_cannot_change_and_ends_when_the_token_is_revoked()
-> TestResult {
    let h = harness::start().await?;
    let (id, token) = admin_token(&h, json!(["read"])).await?;
    let (browser, _) = Browser::open(&h, json!({"token": token})).await?;
    assert_eq!(browser.get("/api/runs").await?.status, 200);

    let create = browser
        .post("/api/agents", json!({"name": "from-the-dashboard"}))
        .await?;
    assert_eq!(create.status, 403);
    assert_eq!(create.message(), "Insufficient scope. Required: write");
    let gate = pending_gate(&h, "session-read-only").await?;
    let approve = browser
        .post(&format!("/api/approval-requests/{gate}/approve"), json!({}))
        .await?;
    assert_eq!(approve.status, 403);
    assert_eq!(approve.message(), "Insufficient scope. Required: approve");

    // A password session of the same gateway is not affected by the token's revocation.
    let (password_browser, _) = Browser::open(&h, json!({"password": ADMIN_PASSWORD})).await?;
    h.admin_post(&format!("/api/admin-tokens/{id}/revoke"), json!({}))
        .await?;
    assert_eq!(browser.get("/api/runs").await?.status, 401);
    assert_eq!(browser.get("/api/session").await?.status, 401);
    assert_eq!(password_browser.get("/api/runs").await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn changing_the_dashboard_password_ends_the_sessions_opened_with_the_old_one() -> TestResult {
    let h = harness::start().await?;
    let (browser, _) = Browser::open(&h, json!({"password": ADMIN_PASSWORD})).await?;
    let cookie = format!("rungate_session={}", browser.secret);
    let runs_with_cookie = |h: &Harness| {
        h.http
            .get(format!("{}/api/runs", h.url))
            .header("cookie", cookie.clone())
            .send()
    };
    assert_eq!(runs_with_cookie(&h).await?.status(), 200);

    // Restarted with a new password: the old password's session is refused.
    let (mock, dir, ..) = h.stop().await?;
    let env = [(
        "RUNGATE_DASHBOARD_PASSWORD".to_owned(),
        "a-new-password".to_owned(),
    )];
    let h = harness::boot_with_env(mock, dir, "", &env).await?;
    let refused = runs_with_cookie(&h).await?;
    assert_eq!(refused.status(), 401);

    // Back on the password it was opened with, the same session works again: it is the
    // password that decides, not the restart.
    let (mock, dir, ..) = h.stop().await?;
    let h = harness::boot(mock, dir, "").await?;
    assert_eq!(runs_with_cookie(&h).await?.status(), 200);
    Ok(())
}
