//! Token authentication of the REST API, against a controller served in this process the way
//! the binary serves it (`strata_net::serve`): off until initialised, then 401 without a
//! valid token, 403 for a read-only token on a change, and tokens kept only as hashes.

use std::path::Path;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use strata_api::ApiCallRc;
use strata_controller::config::{resolve, FileConfig, Overrides};
use strata_controller::core::Core;
use strata_store::{Persistence, SqliteStore};

struct Served {
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn serve(db: &Path) -> Served {
    let mut settings = resolve(&FileConfig::default(), &Overrides::default()).unwrap();
    settings.database = strata_controller::config::Database::Sqlite(db.to_path_buf());
    settings.data_dir = db.parent().unwrap().to_path_buf();
    let store = SqliteStore::open(db).unwrap();
    let core: Arc<Core> = Core::new(
        Box::new(store) as Box<dyn Persistence>,
        "auth-test".into(),
        settings,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        strata_net::serve(
            listener,
            strata_controller::rest::router(core),
            None,
            strata_net::Limits::default(),
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap()
    });
    Served {
        base,
        http: reqwest::Client::new(),
        stop: Some(stop),
        done,
    }
}

impl Served {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Makes a token and answers its secret.
    async fn token(&self, admin: Option<&str>, body: Value) -> String {
        let (status, v) = self
            .call("POST", "/v1/controller/auth/token", admin, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let rcs: Vec<ApiCallRc> = serde_json::from_value(v).unwrap();
        rcs[0].obj_refs["token"].clone()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap();
    }
}

fn refused_with(v: &Value, words: &str) {
    let rcs: Vec<ApiCallRc> = serde_json::from_value(v.clone()).unwrap();
    assert!(rcs[0].is_error(), "{v}");
    assert_eq!(rcs[0].code(), 412, "{v}");
    assert!(rcs[0].message.contains(words), "{v}");
}

#[tokio::test]
async fn tokens_guard_the_api_once_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linstor.sqlite");
    let s = serve(&db).await;

    // Off until initialised (LINSTOR's default).
    let (status, _) = s.call("GET", "/v1/nodes", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = s
        .call(
            "POST",
            "/v1/controller/auth/initialize-token-auth",
            None,
            Some(json!({"description": "first"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let rcs: Vec<ApiCallRc> = serde_json::from_value(v).unwrap();
    let admin = rcs[0].obj_refs["token"].clone();
    assert!(rcs[0].message.contains(&admin));

    // Without a token, or with a wrong one: 401 with an ApiCallRc and the scheme to use.
    let resp = s
        .http
        .get(format!("{}/v1/nodes", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    refused_with(&resp.json().await.unwrap(), "Unauthorized");
    let (status, _) = s.call("GET", "/v1/nodes", Some("nope"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The version and the health check stay open.
    for path in ["/v1/controller/version", "/health"] {
        assert_eq!(s.call("GET", path, None, None).await.0, StatusCode::OK);
    }
    let (status, _) = s.call("GET", "/v1/nodes", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, props) = s
        .call("GET", "/v1/controller/properties", Some(&admin), None)
        .await;
    assert_eq!(props["Auth/TokenAuthenticationEnabled"], "true");

    // A read-only token reads, and may ask questions, but changes nothing.
    let ro = s
        .token(
            Some(&admin),
            json!({"description": "monitoring", "role": "read-only"}),
        )
        .await;
    assert_eq!(
        s.call("GET", "/v1/resource-groups", Some(&ro), None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, v) = s
        .call(
            "POST",
            "/v1/resource-groups",
            Some(&ro),
            Some(json!({"name": "rg1"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    refused_with(&v, "only read");
    let (status, _) = s
        .call(
            "POST",
            "/v1/controller/auth/token",
            Some(&ro),
            Some(json!({"description": "escalate"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            "POST",
            "/v1/resource-groups",
            Some(&admin),
            Some(json!({"name": "rg1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // IP filters: this client is 127.0.0.1.
    let elsewhere = s
        .token(
            Some(&admin),
            json!({"description": "f", "ip_filter": "10.9.9.0/24", "role": "read-only"}),
        )
        .await;
    let here = s
        .token(
            Some(&admin),
            json!({"description": "f", "ip_filter": "127.0.0.0/8", "role": "read-only"}),
        )
        .await;
    assert_eq!(
        s.call("GET", "/v1/nodes", Some(&elsewhere), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.call("GET", "/v1/nodes", Some(&here), None).await.0,
        StatusCode::OK
    );
    let (status, _) = s
        .call(
            "POST",
            "/v1/controller/auth/token",
            Some(&admin),
            Some(json!({"description": "f", "ip_filter": "somewhere"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Expired, switched off, revoked: all 401.
    let expired = s
        .token(
            Some(&admin),
            json!({"description": "old", "expires_at": "2001-01-01"}),
        )
        .await;
    assert_eq!(
        s.call("GET", "/v1/nodes", Some(&expired), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, list) = s
        .call("GET", "/v1/controller/auth/token", Some(&admin), None)
        .await;
    assert_eq!(list["count"], 5, "{list}");
    let text = list.to_string();
    for secret in [&admin, &ro, &here] {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is listed: {text}"
        );
    }
    let id_of = |description: &str, role: &str| {
        list["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["description"] == description && t["role"] == role)
            .map(|t| t["id"].as_u64().unwrap())
            .unwrap()
    };
    let ro_id = id_of("monitoring", "read-only");
    let (status, _) = s
        .call(
            "PUT",
            &format!("/v1/controller/auth/token/{ro_id}"),
            Some(&admin),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.call("GET", "/v1/nodes", Some(&ro), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = s
        .call(
            "PUT",
            &format!("/v1/controller/auth/token/{ro_id}"),
            Some(&admin),
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.call("GET", "/v1/nodes", Some(&ro), None).await.0,
        StatusCode::OK
    );
    let (status, _) = s
        .call(
            "DELETE",
            &format!("/v1/controller/auth/token/{ro_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.call("GET", "/v1/nodes", Some(&ro), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The last admin token cannot go while authentication is on.
    let admin_id = id_of("first", "admin");
    let (status, v) = s
        .call(
            "DELETE",
            &format!("/v1/controller/auth/token/{admin_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    s.stop().await;

    // Tokens survive a restart, and only their hashes are on disk.
    let s = serve(&db).await;
    assert_eq!(
        s.call("GET", "/v1/nodes", Some(&admin), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.call("GET", "/v1/nodes", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            on_disk.extend(std::fs::read(&path).unwrap());
        }
    }
    let on_disk = String::from_utf8_lossy(&on_disk);
    assert!(!on_disk.contains(&admin), "a secret reached the disk");
    assert!(on_disk.contains(&strata_controller::rest::auth::token_hash(&admin)));
}
