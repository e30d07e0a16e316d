//! What many tests start from: users who sign in with [`PASSWORD`], a
//! registered client, a browser with a signed-in session.
//!
//! ```ignore
//! let alice = fixtures::alice(&app);
//! let rp = fixtures::client("Team Wiki")
//!     .redirect("https://wiki.example/callback")
//!     .scopes("openid offline_access read:notes")
//!     .create(&app);
//! let browser = fixtures::signed_in(&app, "alice").await;
//! ```

use latchkey::clock::to_db;
use latchkey::domain::client::ClientInput;
use latchkey::domain::user::ProfileInput;
use latchkey::service::clients;
use latchkey::service::users::{self, NewUser, UserView};
use latchkey::store::models::ConsentRow;
use latchkey::store::repo::consents;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use time::OffsetDateTime;

use super::{TestApp, conn, csrf_token_in};

/// Every fixture user's password.
pub const PASSWORD: &str = "correct horse battery";

/// A user with no profile.
pub fn user(app: &TestApp, username: &str) -> UserView {
    app.create_user(username, PASSWORD)
}

/// An administrator with no profile.
pub fn admin(app: &TestApp, username: &str) -> UserView {
    create(
        app,
        &NewUser {
            username,
            is_admin: true,
            ..Default::default()
        },
    )
}

/// "alice" as relying parties see her: the verified email
/// `alice@example.com` and the name "Alice Liddell".
pub fn alice(app: &TestApp) -> UserView {
    create(
        app,
        &NewUser {
            username: "alice",
            email: Some("alice@example.com"),
            email_verified: true,
            profile: ProfileInput {
                name: Some("Alice Liddell"),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

fn create(app: &TestApp, user: &NewUser<'_>) -> UserView {
    let mut c = conn(&app.db);
    users::create(&mut c, user, Some(PASSWORD), app.clock_now()).expect("create user")
}

/// A new browser (its own cookie jar) in which `username` has signed in
/// through the login form with [`PASSWORD`].
pub async fn signed_in(app: &TestApp, username: &str) -> reqwest::Client {
    let browser = app.new_browser();
    let r = app.login(&browser, username, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{username} signs in");
    browser
}

/// A client registration to fill in and [`create`](ClientBuilder::create):
/// confidential, no redirect URIs, the default scopes and grant types
/// unless told otherwise. Custom scopes must exist first
/// ([`TestApp::define_scopes`]).
pub fn client(name: &str) -> ClientBuilder {
    ClientBuilder(ClientInput {
        name: name.to_owned(),
        ..Default::default()
    })
}

pub struct ClientBuilder(ClientInput);

impl ClientBuilder {
    pub fn redirect(mut self, uri: &str) -> Self {
        self.0.redirect_uris.push(uri.to_owned());
        self
    }

    /// A `post_logout_redirect_uri` it may ask to return to after sign-out.
    pub fn post_logout_redirect(mut self, uri: &str) -> Self {
        self.0.post_logout_redirect_uris.push(uri.to_owned());
        self
    }

    /// The scopes it may ask for, space-separated.
    pub fn scopes(mut self, scopes: &str) -> Self {
        self.0.scopes = vec![scopes.to_owned()];
        self
    }

    pub fn grants(mut self, grant_types: &[&str]) -> Self {
        self.0.grant_types = grant_types.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    /// A public client (no secret) when `public` is true.
    pub fn public(mut self, public: bool) -> Self {
        self.0.public = public;
        self
    }

    /// A first-party client (no consent page unless `prompt=consent`).
    pub fn first_party(mut self, first_party: bool) -> Self {
        self.0.first_party = first_party;
        self
    }

    pub fn audience(mut self, audience: &str) -> Self {
        self.0.audiences.push(audience.to_owned());
        self
    }

    /// An audience it serves as a resource server (it may introspect
    /// access tokens issued for it).
    pub fn resource_audience(mut self, audience: &str) -> Self {
        self.0.resource_audiences.push(audience.to_owned());
        self
    }

    /// Tokens only after a second factor (`require_mfa`).
    pub fn require_mfa(mut self, required: bool) -> Self {
        self.0.require_mfa = required;
        self
    }

    /// Where it wants logout tokens (Back-Channel Logout 1.0).
    pub fn backchannel_logout(mut self, uri: &str) -> Self {
        self.0.backchannel_logout_uri = Some(uri.to_owned());
        self
    }

    pub fn id_token_alg(mut self, alg: Option<&str>) -> Self {
        self.0.id_token_alg = alg.map(str::to_owned);
        self
    }

    pub fn create(self, app: &TestApp) -> RegisteredClient {
        let mut c = conn(&app.db);
        let issued = clients::create(
            &mut c,
            None,
            &self.0,
            &app.config.keys.algorithms,
            app.clock_now(),
        )
        .expect("register client");
        RegisteredClient {
            id: issued.client.client_id,
            secret: issued.client_secret,
        }
    }
}

/// A client as its owner knows it: the id and, unless public, the secret.
pub struct RegisteredClient {
    pub id: String,
    pub secret: Option<String>,
}

impl RegisteredClient {
    /// The secret of a confidential client.
    pub fn secret(&self) -> &str {
        self.secret.as_deref().expect("a confidential client")
    }
}

/// Rotates the RS256 signing key at once: the new key signs from now on,
/// the old one retires (still published). Returns the new kid.
pub fn rotate_keys_now(app: &TestApp) -> String {
    let mut c = conn(&app.db);
    let kid = latchkey::keys::ops::rotate(
        &mut c,
        app.keys.kek(),
        latchkey::keys::SigningAlg::RS256,
        true,
        app.clock_now(),
        app.keys.policy(),
        &latchkey::domain::audit::Actor::system(),
    )
    .expect("rotate keys");
    assert!(app.refresh_keys());
    kid
}

/// A confidential client acting for itself, as its owner knows it.
pub struct Caller {
    pub id: String,
    pub secret: String,
}

/// A `client_credentials` client that may hold `scopes`; the custom ones
/// among them are defined first, grantable to machine clients
/// (`latchkey:admin` is built in).
pub fn machine_client(app: &TestApp, name: &str, scopes: &str) -> Caller {
    app.define_machine_scopes(
        &scopes
            .split(' ')
            .filter(|s| s.contains(':') && *s != "latchkey:admin")
            .collect::<Vec<_>>(),
    );
    let rp = client(name)
        .scopes(scopes)
        .grants(&["client_credentials"])
        .create(app);
    Caller {
        id: rp.id.clone(),
        secret: rp.secret().to_owned(),
    }
}

/// A `latchkey:admin` access token for the admin API, from a new
/// `client_credentials` client named "Ops robot".
pub async fn admin_api_token(app: &TestApp) -> String {
    let ops = machine_client(app, "Ops robot", "latchkey:admin");
    machine_token(app, &ops).await
}

/// An access token for `caller` from `/token` (`client_credentials`).
pub async fn machine_token(app: &TestApp, caller: &Caller) -> String {
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&caller.id, Some(&caller.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST /token");
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.expect("token response");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// `grant_type=refresh_token` at the server at `base` (any instance), as
/// `client`: the status and the JSON body (`null` if there is none).
pub async fn refresh_at(
    base: &str,
    client: &RegisteredClient,
    token: &str,
) -> (StatusCode, serde_json::Value) {
    let r = super::client()
        .post(format!("{base}/token"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .expect("POST /token");
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// `POST /introspect` as `caller`: the JSON answer (always 200).
pub async fn introspect(
    app: &TestApp,
    caller: &RegisteredClient,
    token: &str,
) -> serde_json::Value {
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&caller.id, Some(caller.secret()))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// An admin API call (`/admin/api/v1{path}`) with a bearer `token`: the
/// status and the JSON body (`null` if there is none).
pub async fn admin_api(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    admin_call(app, Some(token), method, path, body).await
}

/// [`admin_api`] with or without a token; a body that is not JSON comes
/// back as a string.
pub async fn admin_call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, app.url(&format!("/admin/api/v1{path}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("admin API call");
    let status = r.status();
    let text = r.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// The text of the page at `path` as `browser` sees it.
pub async fn page_text(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    let r = browser.get(app.url(path)).send().await.expect("GET page");
    r.text().await.expect("page body")
}

/// Opens `page` in `browser` and posts its form's CSRF token with `fields`
/// to `action`, as a person submitting the form would.
pub async fn submit(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf_token_in(&page_text(app, browser, page).await).unwrap_or_default();
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    browser
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .expect("POST form")
}

/// `n` new clients named "App 00", "App 01"…, each with a remembered
/// consent (`openid`) of `user_id`, the i-th granted at `granted(i)`, as if
/// the user had authorized them then. Their client ids, in that order.
pub fn consented_apps(
    app: &TestApp,
    user_id: &str,
    n: i64,
    redirect_uri: &str,
    granted: impl Fn(i64) -> OffsetDateTime,
) -> Vec<String> {
    (0..n)
        .map(|i| {
            let rp = client(&format!("App {i:02}"))
                .redirect(redirect_uri)
                .create(app);
            let row = ConsentRow {
                user_id: user_id.to_owned(),
                client_id: rp.id.clone(),
                scope: "openid".into(),
                granted_at: to_db(granted(i)),
            };
            consents::put(&mut conn(&app.db), &row).expect("consent");
            rp.id
        })
        .collect()
}

/// Defines the custom scope `scope`, which only members of `group` may be
/// granted (the group is created if missing).
pub fn restricted_scope(app: &TestApp, scope: &str, group: &str) {
    use latchkey::domain::audit::Actor;
    use latchkey::service::{groups, scopes};
    let mut c = conn(&app.db);
    let actor = Actor::system();
    if groups::find(&mut c, group).is_err() {
        groups::create(&mut c, group, &actor, app.clock_now()).unwrap();
    }
    scopes::create(
        &mut c,
        scope,
        &scopes::ScopeInput {
            description: format!("{scope} (for {group})"),
            groups: vec![group.into()],
            machine_grantable: None,
        },
        &actor,
        app.clock_now(),
    )
    .unwrap();
}

/// Sends a request and reads the answer's body as text.
pub async fn text(req: reqwest::RequestBuilder) -> String {
    req.send().await.unwrap().text().await.unwrap()
}

/// Sends a request and reads its status and JSON body (`null` when the
/// body is not JSON).
pub async fn json(req: reqwest::RequestBuilder) -> (StatusCode, serde_json::Value) {
    let r = req.send().await.unwrap();
    (
        r.status(),
        r.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// Signs `username` in with [`PASSWORD`] on the login page a redirect sent
/// `browser` to (`/login?return_to=…`), and returns where the login page
/// sends it back to.
pub async fn sign_in_from(
    app: &TestApp,
    browser: &reqwest::Client,
    login_location: &str,
    username: &str,
) -> String {
    let login = app.url(login_location);
    let token = super::csrf_token_in(&text(browser.get(&login)).await).expect("login form");
    let return_to = url::Url::parse(&login)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
        .expect("return_to");
    let r = browser
        .post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", token.as_str()),
            ("return_to", return_to.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{username} signs in");
    r.headers()["location"].to_str().unwrap().to_owned()
}
