//! The stand-in servers with reqwest, the HTTP client comfydock itself uses.

use comfydock_test::file_server::FileServer;
use comfydock_test::registry::{NodePackage, RegistryServer};

fn payload() -> Vec<u8> {
    (0..300_000u32).map(|i| u8::try_from(i % 253).unwrap()).collect()
}

#[tokio::test]
async fn reqwest_drops_the_token_on_a_cross_host_redirect() {
    let server = FileServer::start();
    server.add("/blob", payload());
    server.redirect("/resolve/model.bin", 302, &server.localhost_url_for("/blob"));
    let client = reqwest::Client::new();
    let response = client
        .get(server.url_for("/resolve/model.bin"))
        .bearer_auth("hf_secret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), payload());
    // The token reached the origin host only; the redirect target (other host name) got none.
    assert_eq!(
        server.authorized_requests(),
        [(
            format!("127.0.0.1:{}", server.url().rsplit(':').next().unwrap()),
            "/resolve/model.bin".to_owned()
        )]
    );
    assert!(!server.authorization_seen_on_host("localhost"));
    assert_eq!(server.requests_for("/blob")[0].host_name(), "localhost");
}

#[tokio::test]
async fn reqwest_sees_a_dropped_body_then_resumes_with_range() {
    let server = FileServer::start();
    server.add("/big", payload());
    server.drop_after("/big", 100_000, 1);
    let client = reqwest::Client::new();
    let first = client.get(server.url_for("/big")).send().await.unwrap();
    assert_eq!(first.content_length(), Some(300_000));
    assert!(
        first.bytes().await.is_err(),
        "a short body is an error for reqwest"
    );

    let resumed = client
        .get(server.url_for("/big"))
        .header("Range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 206);
    assert_eq!(resumed.headers()["content-range"], "bytes 100000-299999/300000");
    assert_eq!(resumed.bytes().await.unwrap(), payload()[100_000..]);
    assert_eq!(server.ranges_for("/big"), ["bytes=100000-"]);
}

#[tokio::test]
async fn reqwest_reuses_keep_alive_connections_and_sees_5xx() {
    let server = FileServer::start();
    server.add("/a", b"A".to_vec());
    server.fail_with("/a", 503, 1);
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(server.url_for("/a")).send().await.unwrap().status(),
        503
    );
    for _ in 0..5 {
        let response = client.get(server.url_for("/a")).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "A");
    }
    assert_eq!(server.hits("/a"), 6);
    assert_eq!(
        server.connections_accepted(),
        1,
        "one pooled keep-alive connection"
    );
}

#[tokio::test]
async fn reqwest_reads_registry_json_and_fails_when_stopped() {
    let mut registry = RegistryServer::start();
    registry.publish(NodePackage::new("my-node", "1.0.0").node_class("MyNode"));
    let client = reqwest::Client::new();
    let node: serde_json::Value = client
        .get(format!("{}/nodes/my-node", registry.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let zip = client
        .get(node["latest_version"]["downloadUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(zip.headers()["content-type"], "application/zip");
    assert!(zip.bytes().await.unwrap().starts_with(b"PK"));
    let url = registry.url();
    registry.stop();
    let error = reqwest::Client::new()
        .get(format!("{url}/nodes/my-node"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}
