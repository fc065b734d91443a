//! The client against a real node: the library ([`client_library`]) on an in-process
//! node, and the `kith` tool ([`kith_tool`]) end to end on a real `kithd` process, as a
//! person would use them.
//!
//! What only a dishonest node can do (forged or far-future events, events nobody asked
//! for) is tested in `client/tests/client`, against a node that misbehaves on purpose.

/// [`kith_client::Connection`] and [`kith_client::Subscription`] on a real node.
mod client_library {
    use std::time::Duration;

    use kith_client::{ClientError, Connection, Subscription, SubscriptionItem};
    use kith_protocol::frame::{ErrorCode, Filter};
    use kith_protocol::{EventId, SUPPORTED_VERSIONS};
    use kith_tests::{post, seeded_key, TestNode};

    async fn next(sub: &mut Subscription) -> SubscriptionItem {
        tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("the subscription went quiet")
            .expect("the subscription ended")
    }

    /// An address where nothing listens.
    fn absent_node() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        address
    }

    #[tokio::test]
    async fn the_greeting_names_the_node_and_its_limits() {
        let node = TestNode::start_with(|c| c.limits.max_text_chars = 500).await;
        let conn = Connection::connect(&node.url()).await.unwrap();
        assert_eq!(conn.node_key(), node.server_ref().node_key());
        assert_eq!(conn.versions(), SUPPORTED_VERSIONS);
        assert_eq!(conn.limits().max_text_chars, 500);
        assert_eq!(
            conn.url(),
            format!("{}/ws", node.url()).replace("http", "ws")
        );
        assert!(!conn.is_closed());
    }

    #[tokio::test]
    async fn an_absent_node_is_explained() {
        let err = Connection::connect(&absent_node()).await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string()
                .ends_with("is it running? check the address"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refusals_come_back_with_the_nodes_code() {
        let node = TestNode::start().await;
        let alice = seeded_key(1);
        let conn = Connection::connect(&node.url()).await.unwrap();
        let err = conn.login(&alice, None).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::NotRegistered), "{err}");
        assert!(err.to_string().starts_with("the node refused: "), "{err}");

        let conn = Connection::connect(&node.url()).await.unwrap();
        let err = conn.login(&alice, Some("made-up")).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::BadInvite), "{err}");

        let anonymous = Connection::connect(&node.url()).await.unwrap();
        let err = anonymous
            .publish(&post(&alice, "hello", None))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::AuthRequired), "{err}");

        let conn = Connection::connect(&node.url()).await.unwrap();
        conn.login(&alice, Some(&node.invite(1))).await.unwrap();
        let mut tampered = post(&alice, "original", None).encode();
        let in_body = tampered.len() - 3;
        tampered[in_body] ^= 1;
        let err = conn.publish_bytes(tampered).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::BodyMismatch), "{err}");
        // The connection is still usable after a refusal.
        let event = post(&alice, "fine", None);
        assert_eq!(conn.publish(&event).await.unwrap().event_id, event.id());
    }

    /// The node allows 3 subscriptions per connection here, so new ones open only if it
    /// heard about the ones dropped and stopped.
    #[tokio::test]
    async fn dropping_or_stopping_a_subscription_tells_the_node() {
        let node = TestNode::start_with(|c| c.connections.max_subscriptions = 3).await;
        let conn = Connection::connect(&node.url()).await.unwrap();
        let mut kept = conn.subscribe(Filter::default()).await.unwrap();
        let mut dropped = conn.subscribe(Filter::default()).await.unwrap();
        let mut stopped = conn.subscribe(Filter::default()).await.unwrap();
        for sub in [&mut kept, &mut dropped, &mut stopped] {
            assert_eq!(next(sub).await, SubscriptionItem::StoredDone);
        }
        let mut one_too_many = conn.subscribe(Filter::default()).await.unwrap();
        assert!(
            matches!(
                next(&mut one_too_many).await,
                SubscriptionItem::Closed {
                    code: ErrorCode::TooManySubscriptions,
                    ..
                }
            ),
            "the node allows 3"
        );

        drop(dropped);
        conn.unsubscribe(stopped).await;
        let mut new_ones = Vec::new();
        for _ in 0..2 {
            let mut sub = conn.subscribe(Filter::default()).await.unwrap();
            assert_eq!(next(&mut sub).await, SubscriptionItem::StoredDone);
            new_ones.push(sub);
        }

        let alice = seeded_key(2);
        let writer = Connection::connect(&node.url()).await.unwrap();
        writer.login(&alice, Some(&node.invite(1))).await.unwrap();
        let event = post(&alice, "to everyone still listening", None);
        writer.publish(&event).await.unwrap();
        for sub in std::iter::once(&mut kept).chain(&mut new_ones) {
            assert_eq!(next(sub).await, SubscriptionItem::Event(event.clone()));
        }
    }

    #[tokio::test]
    async fn closing_ends_requests_and_subscriptions() {
        let node = TestNode::start().await;
        let conn = Connection::connect(&node.url()).await.unwrap();
        let mut sub = conn.subscribe(Filter::default()).await.unwrap();
        assert_eq!(next(&mut sub).await, SubscriptionItem::StoredDone);
        let other_handle = conn.clone();
        conn.close().await;
        assert!(other_handle.is_closed());
        assert!(matches!(
            next(&mut sub).await,
            SubscriptionItem::Disconnected { .. }
        ));
        assert_eq!(sub.next().await, None);
        let err = other_handle
            .publish(&post(&seeded_key(1), "late", None))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Closed { .. }), "{err:?}");
        assert!(err.to_string().contains("connect again"), "{err}");
        assert!(matches!(
            other_handle.subscribe(Filter::default()).await,
            Err(ClientError::Closed { .. })
        ));
    }

    /// One connection carries 100 concurrent publishers; another carries 1000
    /// subscriptions, and every subscription sees every post exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_publishers_and_subscriptions_share_one_connection_each() {
        const PUBLISHERS: usize = 100;
        const SUBSCRIPTIONS: usize = 1000;
        let node = TestNode::start_with(|c| {
            kith_tests::node::without_rate_limits(c);
            let limits = &mut c.connections;
            limits.max_subscriptions = SUBSCRIPTIONS;
            // Every post goes to all 1000 subscriptions of one connection at once.
            limits.outbound_queue = 2 * PUBLISHERS * SUBSCRIPTIONS;
        })
        .await;
        let author = seeded_key(1);
        let writer = Connection::connect(&node.url()).await.unwrap();
        writer.login(&author, Some(&node.invite(1))).await.unwrap();
        let reader = Connection::connect(&node.url()).await.unwrap();

        let mut subs = Vec::new();
        for _ in 0..SUBSCRIPTIONS {
            subs.push(reader.subscribe(Filter::default()).await.unwrap());
        }
        for sub in &mut subs {
            assert_eq!(next(sub).await, SubscriptionItem::StoredDone);
        }

        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|i| {
                let writer = writer.clone();
                let event = post(&author, &format!("message {i}"), None);
                tokio::spawn(async move {
                    let outcome = writer.publish(&event).await.unwrap();
                    assert_eq!(outcome.event_id, event.id());
                    assert!(!outcome.duplicate);
                    event.id()
                })
            })
            .collect();
        let mut published: Vec<EventId> = Vec::new();
        for p in publishers {
            published.push(p.await.unwrap());
        }
        published.sort();

        let readers: Vec<_> = subs
            .into_iter()
            .map(|mut sub| {
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    while seen.len() < PUBLISHERS {
                        match next(&mut sub).await {
                            SubscriptionItem::Event(e) => seen.push(e.id()),
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    seen.sort();
                    seen
                })
            })
            .collect();
        for r in readers {
            assert_eq!(r.await.unwrap(), published);
        }
        let (_, health) = node.get_json("/health").await;
        assert_eq!(health["events"], PUBLISHERS);
    }
}

/// The `kith` tool, run as a program, against a real `kithd` process.
mod kith_tool {
    use std::path::Path;
    use std::process::Output;
    use std::time::Duration;

    use kith_tests::node::mint_invite;
    use kith_tests::KithdProcess;
    use serde_json::Value;
    use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
    use tokio::process::{Child, ChildStdout};

    /// A `kithd` process with its own data directory.
    struct Kithd {
        // Declared first, so the process stops before its directory is removed.
        process: KithdProcess,
        _dir: tempfile::TempDir,
    }

    impl Kithd {
        async fn start() -> Kithd {
            let dir = tempfile::tempdir().unwrap();
            let process = KithdProcess::start(dir.path(), &[]).await;
            Kithd { process, _dir: dir }
        }

        fn url(&self) -> &str {
            &self.process.url
        }

        /// A one-use invite code, as `kithd admin invite` makes.
        fn invite(&self) -> String {
            mint_invite(&self.process.dir, 1, 600)
        }
    }

    /// `kith` with its own empty Kith folder (`KITH_HOME`).
    struct Kith {
        home: tempfile::TempDir,
    }

    impl Kith {
        fn new() -> Kith {
            Kith {
                home: tempfile::tempdir().unwrap(),
            }
        }

        fn command(&self, args: &[&str]) -> tokio::process::Command {
            kith_tests::kith_cli::kith_command(self.home.path(), None, args)
        }

        /// Runs `kith args`, with `input` on its standard input.
        async fn run(&self, args: &[&str], input: Option<&str>) -> Output {
            kith_tests::kith_cli::run_kith(self.home.path(), None, args, input).await
        }

        /// Runs and expects success; gives (standard output, standard error).
        async fn ok(&self, args: &[&str]) -> (String, String) {
            let out = self.run(args, None).await;
            assert!(
                out.status.success(),
                "kith {args:?} failed: {}",
                text(&out.stderr)
            );
            (text(&out.stdout), text(&out.stderr))
        }

        /// Runs and expects failure; gives standard error.
        async fn fails(&self, args: &[&str]) -> String {
            let out = self.run(args, None).await;
            assert!(
                !out.status.success(),
                "kith {args:?} should have failed; it printed {}",
                text(&out.stdout)
            );
            text(&out.stderr)
        }

        fn key_file(&self, profile: &str) -> std::path::PathBuf {
            self.home
                .path()
                .join("identities")
                .join(format!("{profile}.key"))
        }

        /// The public key of the default identity.
        async fn public_key(&self) -> String {
            self.ok(&["id", "show"]).await.0.trim().to_owned()
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// An address where nothing listens.
    fn absent_node() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        address
    }

    /// The JSON lines `kith read --json` printed.
    fn json_lines(out: &str) -> Vec<Value> {
        out.lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Checks the notice `kith` prints when it makes an identity, and gives the new key.
    fn made_identity_notice(stderr: &str, key_file: &Path, flag: &str) -> String {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("Made you a new identity kith1"))
            .unwrap_or_else(|| panic!("no notice of a new identity in: {stderr}"));
        let expected_end = format!(
            " (saved in {}); back it up with `kith id export{flag}`.",
            key_file.display()
        );
        assert!(line.ends_with(&expected_end), "{line}");
        line.trim_start_matches("Made you a new identity ")
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn identities_are_made_shown_exported_and_imported() {
        let kith = Kith::new();
        let (created, _) = kith.ok(&["id", "new"]).await;
        assert!(
            created.starts_with("Created your identity 'default'"),
            "{created}"
        );
        let public = kith.public_key().await;
        assert!(public.starts_with("kith1") && created.contains(&public));
        #[cfg(unix)]
        {
            assert_eq!(mode(&kith.key_file("default")), 0o600);
            assert_eq!(mode(&kith.home.path().join("identities")), 0o700);
        }

        let again = kith.fails(&["id", "new"]).await;
        assert!(
            again.starts_with("error: an identity 'default' already exists"),
            "{again}"
        );
        assert!(again.contains("\nhint: "), "{again}");
        assert_eq!(kith.public_key().await, public, "the old key was kept");

        let exported = kith.run(&["id", "export"], None).await;
        assert!(exported.status.success());
        assert!(text(&exported.stderr).contains("SECRET"));
        let secret = text(&exported.stdout);
        assert!(secret.starts_with("kithsecret1"), "{secret}");

        let imported = kith
            .run(
                &["id", "import", "--profile", "laptop"],
                Some(&format!("\n {secret}\n")),
            )
            .await;
        assert!(imported.status.success(), "{}", text(&imported.stderr));
        assert!(text(&imported.stdout).starts_with("Imported your identity 'laptop'"));
        let (shown, _) = kith
            .ok(&["--profile", "laptop", "id", "show", "--json"])
            .await;
        let shown: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(shown["public_key"], public.as_str());
        assert_eq!(shown["profile"], "laptop");

        let bad = kith
            .run(&["id", "import", "--profile", "x"], Some("kith1oops"))
            .await;
        assert!(!bad.status.success());
        let err = text(&bad.stderr);
        assert!(
            err.starts_with("error: that is not a Kith secret key"),
            "{err}"
        );
        assert!(err.contains("hint: paste the whole line"), "{err}");
        assert!(!kith.key_file("x").exists());

        let replaced = kith.run(&["id", "new", "--force"], None).await;
        assert!(replaced.status.success());
        assert_ne!(kith.public_key().await, public);
    }

    #[tokio::test]
    async fn a_missing_identity_says_what_to_run() {
        let kith = Kith::new();
        let err = kith.fails(&["id", "show"]).await;
        assert!(
            err.starts_with("error: there is no identity 'default' on this computer yet"),
            "{err}"
        );
        assert!(err.contains("\nhint: run `kith id new` first"), "{err}");
        let err = kith.fails(&["--profile", "work", "id", "export"]).await;
        assert!(err.contains("there is no identity 'work'"), "{err}");
        assert!(
            err.contains("hint: run `kith id new --profile work` first"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_absent_node_says_what_to_check_and_makes_no_key() {
        let kith = Kith::new();
        let address = absent_node();
        for args in [
            vec!["post", "--node", &address, "--invite", "abc", "hello"],
            vec!["register", "--node", &address, "--invite", "abc"],
            vec!["read", "--node", &address],
        ] {
            let err = kith.fails(&args).await;
            assert!(
                err.starts_with("error: could not reach the node at ws://127.0.0.1:"),
                "{args:?}: {err}"
            );
            assert!(
                err.contains("hint: check the node's address (--node, or the KITH_NODE setting)"),
                "{args:?}: {err}"
            );
        }
        assert!(
            !kith.key_file("default").exists(),
            "no identity is made for a node that could not be reached"
        );
    }

    /// The README's quick start: an invite code, then `kith post --invite` and `kith read`.
    #[tokio::test]
    async fn a_first_post_with_an_invite_makes_an_identity_and_joins() {
        let node = Kithd::start().await;
        let kith = Kith::new();
        let invite = node.invite();
        let (posted, notice) = kith
            .ok(&[
                "post",
                "--node",
                node.url(),
                "--invite",
                &invite,
                "Soup kitchen at 6, all welcome",
            ])
            .await;
        assert!(posted.starts_with("Posted: "), "{posted}");
        let id = posted.trim().trim_start_matches("Posted: ").to_owned();
        let made = made_identity_notice(&notice, &kith.key_file("default"), "");
        assert_eq!(kith.public_key().await, made);
        #[cfg(unix)]
        assert_eq!(mode(&kith.key_file("default")), 0o600);

        let (lines, _) = kith.ok(&["read", "--node", node.url(), "--json"]).await;
        let views = json_lines(&lines);
        assert_eq!(views.len(), 1, "{lines}");
        assert_eq!(views[0]["id"], id.as_str());
        assert_eq!(views[0]["author"], made.as_str());
        assert_eq!(views[0]["kind_name"], "post");
        assert_eq!(views[0]["body"]["text"], "Soup kitchen at 6, all welcome");

        // Registered now: later posts need no invite and make no new identity.
        let (posted, notice) = kith
            .ok(&["post", "--node", node.url(), "Bring", "a", "bowl"])
            .await;
        assert!(posted.starts_with("Posted: "), "{posted}");
        assert!(notice.is_empty(), "{notice}");
        assert_eq!(kith.public_key().await, made);
        let piped = kith
            .run(
                &["post", "--node", node.url(), "-"],
                Some("line one\nline two\n"),
            )
            .await;
        assert!(piped.status.success(), "{}", text(&piped.stderr));
        // Posting the same invite again is harmless once registered.
        kith.ok(&["post", "--node", node.url(), "--invite", &invite, "again"])
            .await;

        let (lines, _) = kith.ok(&["read", "--node", node.url(), "--json"]).await;
        let texts: Vec<String> = json_lines(&lines)
            .iter()
            .map(|v| v["body"]["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            texts,
            [
                "Soup kitchen at 6, all welcome",
                "Bring a bowl",
                "line one\nline two",
                "again"
            ]
        );
        let (human, _) = kith
            .ok(&["read", "--node", node.url(), "--limit", "1"])
            .await;
        assert!(human.contains(" · you\n  again"), "{human}");
        assert!(!human.contains("Soup"), "{human}");

        // Someone else reading sees the author's short key instead of "you".
        let stranger = Kith::new();
        let (human, _) = stranger.ok(&["read", "--node", node.url()]).await;
        assert!(human.contains("Soup kitchen at 6, all welcome"), "{human}");
        assert!(!human.contains(" · you"), "{human}");
        assert!(human.contains(&made[..10]), "{human}");
    }

    #[tokio::test]
    async fn posting_without_an_invite_says_how_to_join_and_register_then_post_works() {
        let node = Kithd::start().await;
        let kith = Kith::new();
        let out = kith
            .run(&["post", "--node", node.url(), "too early"], None)
            .await;
        assert!(!out.status.success());
        let err = text(&out.stderr);
        made_identity_notice(&err, &kith.key_file("default"), "");
        assert!(
            err.contains("error: the node refused: the key kith1"),
            "{err}"
        );
        assert!(err.contains("(code not_registered)"), "{err}");
        assert!(
            err.contains(
                "hint: ask the node's admin for an invite code and run `kith register --invite \
                 CODE`"
            ),
            "{err}"
        );
        let public = kith.public_key().await;

        let (registered, notice) = kith
            .ok(&["register", "--node", node.url(), "--invite", &node.invite()])
            .await;
        assert_eq!(
            registered,
            format!(
                "Registered {public} on {}.\nYou can now post with: kith post \"your message\"\n",
                node.url()
            )
        );
        assert!(
            notice.is_empty(),
            "the identity was already there: {notice}"
        );
        let (posted, _) = kith
            .ok(&["post", "--node", node.url(), "--json", "on time"])
            .await;
        let posted: Value = serde_json::from_str(&posted).unwrap();
        assert_eq!(posted["duplicate"], false);
        assert_eq!(posted["id"].as_str().unwrap().len(), 64);

        // `register` also makes an identity when the profile has none.
        let (registered, notice) = kith
            .ok(&[
                "--profile",
                "food-bank",
                "register",
                "--node",
                node.url(),
                "--invite",
                &node.invite(),
                "--json",
            ])
            .await;
        let made =
            made_identity_notice(&notice, &kith.key_file("food-bank"), " --profile food-bank");
        let registered: Value = serde_json::from_str(&registered).unwrap();
        assert_eq!(registered["registered"], true);
        assert_eq!(registered["public_key"], made.as_str());
        kith.ok(&[
            "--profile",
            "food-bank",
            "post",
            "--node",
            node.url(),
            "from the food bank",
        ])
        .await;
    }

    /// Reads lines until one satisfies `wanted`, failing after 10 seconds.
    async fn line_where<R>(lines: &mut Lines<R>, wanted: impl Fn(&str) -> bool) -> String
    where
        R: tokio::io::AsyncBufRead + Unpin,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .expect("the line came in time")
                .unwrap()
                .expect("the output went on");
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Presses Ctrl-C in `child` and checks that it stops cleanly.
    async fn interrupt(mut child: Child) {
        let pid = child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("kith read --follow stopped after Ctrl-C")
            .unwrap();
        assert!(exit.success(), "{exit}");
    }

    fn stdout_lines(child: &mut Child) -> Lines<BufReader<ChildStdout>> {
        BufReader::new(child.stdout.take().unwrap()).lines()
    }

    #[tokio::test]
    async fn read_follow_shows_new_posts_as_they_come() {
        let node = Kithd::start().await;
        let kith = Kith::new();
        let invite = node.invite();
        kith.ok(&["post", "--node", node.url(), "--invite", &invite, "earlier"])
            .await;

        // JSON: the stored post comes first, so once it is printed the rest is live.
        let mut follow = kith
            .command(&["read", "--node", node.url(), "--follow", "--json"])
            .spawn()
            .unwrap();
        let mut lines = stdout_lines(&mut follow);
        let first: Value = serde_json::from_str(&line_where(&mut lines, |_| true).await).unwrap();
        assert_eq!(first["body"]["text"], "earlier");
        kith.ok(&["post", "--node", node.url(), "live", "one"])
            .await;
        let second: Value = serde_json::from_str(&line_where(&mut lines, |_| true).await).unwrap();
        assert_eq!(second["body"]["text"], "live one");
        interrupt(follow).await;

        // Text: a note on standard error says when new posts are being waited for.
        let mut follow = kith
            .command(&["read", "--node", node.url(), "-f"])
            .spawn()
            .unwrap();
        let mut notes = BufReader::new(follow.stderr.take().unwrap()).lines();
        line_where(&mut notes, |l| {
            l == "-- waiting for new posts; press Ctrl-C to stop --"
        })
        .await;
        let mut lines = stdout_lines(&mut follow);
        kith.ok(&["post", "--node", node.url(), "live two"]).await;
        // Each post is a line saying when and who, then its text indented.
        let mut previous = String::new();
        loop {
            let line = line_where(&mut lines, |_| true).await;
            if line == "  live two" {
                break;
            }
            previous = line;
        }
        assert!(previous.ends_with(" UTC · you"), "{previous}");
        interrupt(follow).await;
    }

    #[tokio::test]
    async fn mistakes_are_explained() {
        let node = Kithd::start().await;
        let kith = Kith::new();
        let at = node.url();

        let err = kith.fails(&["post", "--node", at, " "]).await;
        assert_eq!(
            err,
            "error: the message is empty\nhint: write something to post\n"
        );

        let err = kith
            .fails(&["post", "--node", "ftp://example.org", "hi"])
            .await;
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains("http://"), "{err}");

        let err = kith
            .fails(&["post", "--node", at, "--invite", "not-a-code", "hi"])
            .await;
        assert!(err.contains("(code bad_invite)"), "{err}");
        assert!(
            err.contains("hint: check that you typed the invite code exactly"),
            "{err}"
        );

        let long = "x".repeat(20_000);
        let err = kith
            .fails(&["post", "--node", at, "--invite", &node.invite(), &long])
            .await;
        assert!(err.contains("error: this post cannot be sent: "), "{err}");
        assert!(
            err.contains("hint: change the message and try again"),
            "{err}"
        );

        // An invite for one person, used by a second.
        let invite = node.invite();
        kith.ok(&["post", "--node", at, "--invite", &invite, "first"])
            .await;
        let second = Kith::new();
        let err = second
            .fails(&["post", "--node", at, "--invite", &invite, "me too"])
            .await;
        assert!(err.contains("(code bad_invite)"), "{err}");
        assert!(err.contains("ask the node's admin for a new one"), "{err}");

        let err = kith.fails(&["read", "--node", at, "--author", "bob"]).await;
        assert!(err.contains("error: invalid value 'bob'"), "{err}");
    }
}
