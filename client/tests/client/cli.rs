//! The `kith` tool as a person uses it: its output, its files and its error messages.

use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt as _;

use crate::fake_node::FakeNode;

/// `kith` with its own Kith folder.
struct Kith {
    home: tempfile::TempDir,
}

impl Kith {
    fn new() -> Kith {
        Kith {
            home: tempfile::tempdir().unwrap(),
        }
    }

    async fn run(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kith"))
            .args(args)
            .env("KITH_HOME", self.home.path())
            .env_remove("KITH_NODE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).await.unwrap();
        }
        drop(stdin);
        child.wait_with_output().await.unwrap()
    }

    /// Runs and expects success; gives standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None).await;
        assert!(
            out.status.success(),
            "kith {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs and expects failure; gives standard error.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args, None).await;
        assert!(!out.status.success(), "kith {args:?} should have failed");
        text(&out.stderr)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn identities_are_created_shown_exported_and_imported() {
    let kith = Kith::new();
    let created = kith.ok(&["id", "new"]).await;
    assert!(
        created.contains("Created your identity 'default'"),
        "{created}"
    );
    let public = kith.ok(&["id", "show"]).await.trim().to_owned();
    assert!(public.starts_with("kith1") && created.contains(&public));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let file = kith.home.path().join("identities/default.key");
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let again = kith.fails(&["id", "new"]).await;
    assert!(
        again.starts_with("error: an identity 'default' already exists"),
        "{again}"
    );
    assert!(again.contains("\nhint: "), "{again}");

    let exported = kith.run(&["id", "export"], None).await;
    assert!(text(&exported.stderr).contains("SECRET"));
    let secret = text(&exported.stdout);
    assert!(secret.starts_with("kithsecret1"));

    let out = kith
        .run(
            &["id", "import", "--profile", "laptop"],
            Some(&format!("\n {secret}\n")),
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = kith
        .ok(&["--profile", "laptop", "id", "show", "--json"])
        .await;
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["public_key"], public.as_str());
    assert_eq!(shown["profile"], "laptop");

    let bad = kith
        .run(&["id", "import", "--profile", "x"], Some("kith1oops"))
        .await;
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("hint: paste the whole line"));
}

#[tokio::test]
async fn a_missing_identity_says_what_to_run() {
    let kith = Kith::new();
    let err = kith.fails(&["id", "show"]).await;
    assert!(
        err.starts_with("error: there is no identity 'default'"),
        "{err}"
    );
    assert!(err.contains("\nhint: run `kith id new` first"), "{err}");
}

#[tokio::test]
async fn an_absent_node_says_what_to_check() {
    let kith = Kith::new();
    kith.ok(&["id", "new"]).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = kith.fails(&["post", "--node", &address, "hello"]).await;
    assert!(
        err.starts_with("error: could not reach the node at ws://"),
        "{err}"
    );
    assert!(err.contains("hint: check the node's address"), "{err}");
}

#[tokio::test]
async fn register_post_and_read() {
    let node = FakeNode::start().await;
    let at = node.address.as_str();
    let kith = Kith::new();
    kith.ok(&["id", "new"]).await;

    let err = kith.fails(&["post", "--node", at, "too early"]).await;
    assert!(err.contains("not_registered"), "{err}");
    assert!(
        err.contains("hint: ask the node's admin for an invite code"),
        "{err}"
    );

    node.add_invite("soup-2024");
    let registered = kith
        .ok(&["register", "--node", at, "--invite", "soup-2024"])
        .await;
    assert!(registered.starts_with("Registered kith1"), "{registered}");

    let posted = kith.ok(&["post", "--node", at, "Soup", "at", "six"]).await;
    assert!(posted.starts_with("Posted: "), "{posted}");
    let id = posted.trim().trim_start_matches("Posted: ").to_owned();
    let piped = kith
        .run(&["post", "--node", at, "-"], Some("line one\nline two\n"))
        .await;
    assert!(piped.status.success(), "{}", text(&piped.stderr));

    let lines = kith.ok(&["read", "--node", at, "--json"]).await;
    let views: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0]["id"], id.as_str());
    assert_eq!(views[0]["kind"], 1);
    assert_eq!(views[0]["kind_name"], "post");
    assert_eq!(views[0]["body"]["text"], "Soup at six");
    assert_eq!(views[1]["body"]["text"], "line one\nline two");

    let human = kith.ok(&["read", "--node", at, "--limit", "1"]).await;
    assert!(human.contains(" · you\n  line one\n  line two"), "{human}");
    assert!(!human.contains("Soup"), "{human}");
}
