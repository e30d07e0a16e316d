//! The admin API's list calls page with a cursor: `?limit=&cursor=`,
//! `next_cursor` in the answer, a stable order, every item exactly once.
//! Its clients carry an `ETag`; `If-Match` guards changes (412 if stale).

use latchkey::domain::audit::Actor;
use latchkey::domain::client::ClientInput;
use latchkey::service::clients;
use serde_json::Value;

use crate::common::{self, TestApp, TestDb, fixtures};

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r = app
        .http
        .get(app.url(&format!("/admin/api/v1{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Follows `next_cursor` from `first` to the end; the ids of every item.
async fn walk(app: &TestApp, token: &str, first: &str, key: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut path = first.to_owned();
    loop {
        let (status, body) = get(app, token, &path).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for item in body["items"].as_array().unwrap() {
            ids.push(item[key].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(c) => {
                let sep = if first.contains('?') { '&' } else { '?' };
                path = format!("{first}{sep}cursor={c}");
            }
            None => return (ids, pages),
        }
        assert!(pages < 100, "no end");
    }
}

async fn lists_page_with_a_cursor(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = fixtures::admin_api_token(&app).await;
    {
        let mut c = common::conn(&app.db);
        for name in ["Echo", "alpha", "Delta", "bravo", "Charlie", "Foxtrot"] {
            let input = ClientInput {
                name: name.into(),
                redirect_uris: vec!["https://app.example/cb".into()],
                ..Default::default()
            };
            clients::create(&mut c, None, &input, &[], app.clock_now()).unwrap();
        }
        // Audit rows that share one timestamp: the id breaks the tie.
        for i in 0..7 {
            latchkey::store::audit::record(
                &mut c,
                &Actor::system(),
                "test.page",
                &format!("t{i}"),
                None,
                app.clock_now(),
            )
            .unwrap();
        }
    }

    let (_, all) = get(&app, &token, "/clients?limit=1000").await;
    assert_eq!(all["next_cursor"], Value::Null);
    let everything: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(everything.len(), 7, "six and the robot: {all}");
    let (paged, pages) = walk(&app, &token, "/clients?limit=2", "client_id").await;
    assert_eq!(paged, everything, "same order, each once");
    assert_eq!(pages, 4);

    let (all, _) = walk(&app, &token, "/audit?action=test.page&limit=1000", "id").await;
    assert_eq!(all.len(), 7);
    let (paged, pages) = walk(&app, &token, "/audit?action=test.page&limit=3", "id").await;
    assert_eq!(paged, all);
    assert_eq!(pages, 3);

    // A page boundary survives writes in between: new entries (newest)
    // do not shift the rest.
    let (_, first) = get(&app, &token, "/audit?action=test.page&limit=3").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    latchkey::store::audit::record(
        &mut common::conn(&app.db),
        &Actor::system(),
        "test.page",
        "late",
        None,
        app.clock_now(),
    )
    .unwrap();
    let (_, second) = get(
        &app,
        &token,
        &format!("/audit?action=test.page&limit=3&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["items"][0]["id"], all[3].as_str());

    // Bad cursors and limits are refused, not ignored.
    for path in [
        "/clients?cursor=nope",
        "/audit?cursor=nope",
        "/clients?limit=ten",
        "/clients?page=2",
        "/audit?since=yesterday",
    ] {
        let (status, body) = get(&app, &token, path).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
}

async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut req = app
        .http
        .request(method, app.url(&format!("/admin/api/v1{path}")))
        .bearer_auth(token);
    if let Some(t) = if_match {
        req = req.header("If-Match", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    (
        status,
        etag,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn stale_writes_are_refused_with_412(db: TestDb) {
    use reqwest::Method;
    let app = TestApp::spawn(db).await;
    let token = fixtures::admin_api_token(&app).await;
    let id = {
        let input = ClientInput {
            name: "Wiki".into(),
            redirect_uris: vec!["https://wiki.example/cb".into()],
            ..Default::default()
        };
        clients::create(
            &mut common::conn(&app.db),
            None,
            &input,
            &[],
            app.clock_now(),
        )
        .unwrap()
        .client
        .client_id
    };
    let path = format!("/clients/{id}");
    let (status, first, _) = send(&app, &token, Method::GET, &path, None, None).await;
    assert_eq!(status, 200);
    let first = first.expect("an ETag on the object");
    // Reading again gives the same tag: it names the content.
    let (_, again, _) = send(&app, &token, Method::GET, &path, None, None).await;
    assert_eq!(again.as_deref(), Some(first.as_str()));

    // Admin A writes with the tag it read.
    let rename = |n: &str| Some(serde_json::json!({"name": n}));
    let (status, second, body) = send(
        &app,
        &token,
        Method::PATCH,
        &path,
        Some(&first),
        rename("Wiki A"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let second = second.expect("the new ETag");
    assert_ne!(second, first);
    let updates = || app.count("audit_log WHERE action = 'client.update'");
    let before = updates();

    // Admin B still holds the first tag: refused, nothing changed or audited.
    let (status, _, err) = send(
        &app,
        &token,
        Method::PATCH,
        &path,
        Some(&first),
        rename("Wiki B"),
    )
    .await;
    assert_eq!(status, 412, "{err}");
    assert_eq!(err["error"], "precondition_failed");
    let (status, _, err) = send(&app, &token, Method::DELETE, &path, Some(&first), None).await;
    assert_eq!(status, 412, "{err}");
    let (_, now, body) = send(&app, &token, Method::GET, &path, None, None).await;
    assert_eq!(body["name"], "Wiki A");
    assert_eq!(now.as_deref(), Some(second.as_str()));
    assert_eq!(updates(), before);

    // No If-Match: allowed, as before. `*`: any current version.
    let (status, third, _) = send(&app, &token, Method::PATCH, &path, None, rename("Wiki C")).await;
    assert_eq!(status, 200);
    let (status, _, _) = send(
        &app,
        &token,
        Method::PATCH,
        &path,
        Some("*"),
        rename("Wiki D"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = send(&app, &token, Method::DELETE, &path, third.as_deref(), None).await;
    assert_eq!(status, 412, "third is stale after the * write");
    let (_, current, _) = send(&app, &token, Method::GET, &path, None, None).await;
    let (status, _, _) = send(
        &app,
        &token,
        Method::DELETE,
        &path,
        current.as_deref(),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = send(&app, &token, Method::GET, &path, None, None).await;
    assert_eq!(status, 404);
}

dual_backend!(lists_page_with_a_cursor, stale_writes_are_refused_with_412);
