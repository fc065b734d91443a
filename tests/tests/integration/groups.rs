//! Groups that govern themselves, end to end: people (each with their own Kith folder)
//! run the `kith` tool against a real `kithd` process to create groups, invite and admit,
//! propose, give stances and write outcomes; the node enforces the group's rules.
//!
//! Setup that would be slow through the tool (making keys, registering them on the node)
//! uses the client library. Proposals close a few seconds after they are made; the tests
//! sleep until then.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use kith_client::{fetch_group, Connection, KeyStore, ProfileName};
use kith_protocol::group::rules::{Power, RoleDef, Who};
use kith_protocol::group::Rules;
use kith_protocol::kind::PostBody;
use kith_protocol::{EventBuilder, EventId, GroupId, Kind, SecretKey};
use kith_tests::node::mint_invite;
use kith_tests::KithdProcess;
use serde_json::Value;

/// How long proposals stay open: long enough for everyone's stance to arrive.
const CLOSES_IN: &str = "3s";

/// A `kithd` process with its own data directory.
struct Node {
    // Declared first, so the process stops before its directory is removed.
    process: KithdProcess,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let process = KithdProcess::start(dir.path(), &[]).await;
        Node { process, _dir: dir }
    }

    fn url(&self) -> &str {
        &self.process.url
    }

    /// Someone with their own Kith folder and a key registered on this node.
    async fn person(&self, name: &str) -> Person {
        let home = tempfile::tempdir().unwrap();
        let key = SecretKey::generate(&mut rand::rngs::OsRng);
        KeyStore::new(home.path())
            .save(&ProfileName::default(), &key, false)
            .unwrap();
        let conn = Connection::connect(self.url()).await.unwrap();
        let invite = mint_invite(&self.process.dir, 1, 600);
        conn.login(&key, Some(&invite)).await.unwrap();
        conn.close().await;
        Person {
            name: name.to_owned(),
            home,
            key,
            node: self.url().to_owned(),
        }
    }
}

/// A person using `kith` with their own Kith folder (`KITH_HOME`).
struct Person {
    name: String,
    home: tempfile::TempDir,
    key: SecretKey,
    node: String,
}

impl Person {
    fn public_key(&self) -> String {
        self.key.public_key().to_string()
    }

    async fn run(&self, args: &[&str]) -> Output {
        kith_tests::kith_cli::run_kith(self.home.path(), Some(&self.node), args, None).await
    }

    /// Runs and expects success; gives standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "{}: kith {args:?} failed: {}",
            self.name,
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs with --json and expects success; gives the JSON printed.
    async fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(&[args, &["--json"]].concat()).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Runs and expects failure; gives standard error.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "{}: kith {args:?} should have failed; it printed {}",
            self.name,
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// Writes `rules` to a file in this person's folder.
    fn rules_file(&self, rules: &Rules) -> PathBuf {
        let path = self.home.path().join("rules.json");
        std::fs::write(&path, serde_json::to_string_pretty(rules).unwrap()).unwrap();
        path
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The mutual-aid defaults, except that any member may invite (so a circle can form
/// without a first decision).
fn open_rules() -> Rules {
    Rules {
        invite: Who::AnyMember,
        ..Rules::mutual_aid_default()
    }
}

/// A group founded by the first person and joined by the rest (with one invitation).
/// Gives the group id.
async fn circle(people: &[&Person], rules: &Rules, private: bool) -> String {
    let founder = people[0];
    let rules = founder.rules_file(rules);
    let mut create = vec![
        "group",
        "create",
        "Eastside Food Share",
        "--purpose",
        "Weekly food boxes for neighbours",
        "--name",
        &founder.name,
        "--rules",
        rules.to_str().unwrap(),
    ];
    if private {
        create.push("--private");
    }
    let created = founder.json(&create).await;
    let group = created["id"].as_str().unwrap().to_owned();
    let uses = (people.len() - 1).to_string();
    let invite = founder
        .json(&["group", "invite", &group, "--uses", &uses])
        .await;
    let via = invite["id"].as_str().unwrap().to_owned();
    let (group_ref, via) = (group.as_str(), via.as_str());
    let joins = people[1..].iter().map(|p| async move {
        p.ok(&[
            "group",
            "join",
            group_ref,
            "--via",
            via,
            "--name",
            &p.name,
            "--label",
            "neighbour",
        ])
        .await
    });
    futures_util::future::join_all(joins).await;
    group
}

/// A proposal by `by`; gives its id and closing time (ms).
async fn propose(by: &Person, group: &str, title: &str, action: &[&str]) -> (String, u64) {
    let head = [
        "propose",
        group,
        "--title",
        title,
        "--text",
        "As we talked about on Sunday",
        "--closes-in",
        CLOSES_IN,
    ];
    let made = by.json(&[&head[..], action].concat()).await;
    let id = made["id"].as_str().unwrap().to_owned();
    (id, made["closes_at"].as_u64().unwrap())
}

/// Everyone's stance on a proposal, given at the same time.
async fn stances(group: &str, proposal: &str, who: &[(&Person, &str)]) {
    let runs = who.iter().map(|(p, stance)| async move {
        p.ok(&["stance", proposal, "--group", group, stance]).await
    });
    futures_util::future::join_all(runs).await;
}

/// Sleeps until just after `at` (ms since 1970).
async fn sleep_until(at: u64) {
    let now = kith_client::now().0;
    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now) + 300)).await;
}

/// `kith group show --json`.
async fn show(by: &Person, group: &str) -> Value {
    by.json(&["group", "show", group]).await
}

fn members(shown: &Value) -> Vec<String> {
    shown["state"]["members"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_circle_of_five_admits_a_sixth_by_consent() {
    let node = Node::start().await;
    let [ada, bea, cy, dee, eli, fay] = [
        node.person("Ada").await,
        node.person("Bea").await,
        node.person("Cy").await,
        node.person("Dee").await,
        node.person("Eli").await,
        node.person("Fay").await,
    ];
    let group = circle(&[&ada, &bea, &cy, &dee, &eli], &open_rules(), false).await;
    assert_eq!(members(&show(&ada, &group).await).len(), 5);

    let (proposal, closes) =
        propose(&ada, &group, "Welcome Fay", &["admit", &fay.public_key()]).await;
    let shown = ada.ok(&["group", "show", &group]).await;
    assert!(shown.contains("Would: let "), "{shown}");
    assert!(shown.contains("Not yet given a stance: "), "{shown}");
    let who: Vec<(&Person, &str)> = [&ada, &bea, &cy, &dee, &eli]
        .into_iter()
        .map(|p| (p, "agree"))
        .collect();
    stances(&group, &proposal, &who).await;
    // Too early: the tool says when it closes and writes nothing.
    let early = bea
        .fails(&["outcome", &proposal, "--group", &group, "--explain", "x"])
        .await;
    assert!(early.contains("is still open until"), "{early}");
    sleep_until(closes).await;

    let outcome = bea
        .ok(&[
            "outcome",
            &proposal,
            "--group",
            &group,
            "--explain",
            "Everyone agreed",
        ])
        .await;
    assert!(outcome.contains("Counted stances (5 of 5"), "{outcome}");
    assert!(outcome.contains("Result: PASSED"), "{outcome}");
    let outcome_id = outcome
        .lines()
        .find_map(|l| l.strip_prefix("Outcome written: "))
        .unwrap()
        .to_owned();
    assert!(
        outcome.contains(&format!("kith group join {group} --via {outcome_id}")),
        "{outcome}"
    );

    let joined = fay
        .ok(&[
            "group",
            "join",
            &group,
            "--via",
            &outcome_id,
            "--name",
            "Fay",
        ])
        .await;
    assert!(
        joined.contains("You joined 'Eastside Food Share'"),
        "{joined}"
    );
    let shown = show(&cy, &group).await;
    assert_eq!(members(&shown).len(), 6);
    assert!(members(&shown).contains(&fay.public_key()));
    assert_eq!(
        shown["agrees_with_node"], true,
        "the node computes the same state"
    );
    let text = cy.ok(&["group", "show", &group]).await;
    assert!(
        text.contains("Members (6):") && text.contains("  Fay\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_block_stops_a_proposal() {
    let node = Node::start().await;
    let [ada, bea, cy, dee] = [
        node.person("Ada").await,
        node.person("Bea").await,
        node.person("Cy").await,
        node.person("Dee").await,
    ];
    let group = circle(&[&ada, &bea, &cy], &open_rules(), false).await;
    let (proposal, closes) =
        propose(&ada, &group, "Welcome Dee", &["admit", &dee.public_key()]).await;
    stances(&group, &proposal, &[(&ada, "agree"), (&bea, "agree")]).await;
    cy.ok(&[
        "stance",
        &proposal,
        "--group",
        &group,
        "block",
        "--reason",
        "We have not met Dee yet",
    ])
    .await;
    sleep_until(closes).await;

    let outcome = ada
        .ok(&[
            "outcome",
            &proposal,
            "--group",
            &group,
            "--explain",
            "Cy blocked",
        ])
        .await;
    assert!(
        outcome.contains("Result: FAILED: 1 member blocked it; nothing changes."),
        "{outcome}"
    );
    assert!(
        outcome.contains("Cy: block: \"We have not met Dee yet\""),
        "{outcome}"
    );
    assert!(
        outcome.contains("What it does: failed; nothing changes"),
        "{outcome}"
    );
    let outcome_id = outcome
        .lines()
        .find_map(|l| l.strip_prefix("Outcome written: "))
        .unwrap()
        .to_owned();

    // Dee was not admitted, so the outcome lets nobody in.
    let refused = dee
        .fails(&["group", "join", &group, "--via", &outcome_id])
        .await;
    assert!(refused.contains("(code not_allowed)"), "{refused}");
    assert!(
        refused.contains("hint: ask a member for a new invitation"),
        "{refused}"
    );
    let shown = show(&bea, &group).await;
    assert_eq!(members(&shown).len(), 3);
    assert_eq!(
        shown["state"]["proposals"][&proposal]["outcome"]["verdict"],
        "failed"
    );
}

/// Bea and Cy become co-chairs (Bea for a few seconds), then the group leaves outcomes to
/// co-chairs. Bea writes an outcome during her term; after it, the node refuses hers, while
/// Cy, still co-chair, writes it.
#[tokio::test]
async fn a_co_chairs_facilitate_power_ends_with_their_term() {
    let node = Node::start().await;
    let [ada, bea, cy] = [
        node.person("Ada").await,
        node.person("Bea").await,
        node.person("Cy").await,
    ];
    let mut rules = open_rules();
    rules.roles.insert(
        "co-chair".into(),
        RoleDef {
            powers: [Power::Facilitate].into(),
            max_term_days: 90,
        },
    );
    let group = circle(&[&ada, &bea, &cy], &rules, false).await;
    let strict = ada.rules_file(&Rules {
        facilitate: Who::RoleHolders,
        ..rules
    });
    let grant = |who: &Person, term: &'static str| {
        let key = who.public_key();
        let title = format!("{} co-chairs", who.name);
        let (ada, group) = (&ada, group.as_str());
        async move {
            let action = ["grant-role", "co-chair", &key, "--term", term];
            propose(ada, group, &title, &action).await.0
        }
    };
    let grant_bea = grant(&bea, "10s").await;
    let grant_cy = grant(&cy, "90d").await;
    let change = ["change-rules", "--rules", strict.to_str().unwrap()];
    let (change, _) = propose(&ada, &group, "Co-chairs write outcomes", &change).await;
    let (within, _) = propose(&ada, &group, "Meet on Tuesdays", &["decide"]).await;
    let (after, closes) = propose(&ada, &group, "Meet at the library", &["decide"]).await;
    for proposal in [&grant_bea, &grant_cy, &change, &within, &after] {
        let all: Vec<(&Person, &str)> = [&ada, &bea, &cy].map(|p| (p, "agree")).to_vec();
        stances(&group, proposal, &all).await;
    }
    sleep_until(closes).await;
    for proposal in [&grant_bea, &grant_cy, &change] {
        ada.ok(&[
            "outcome",
            proposal,
            "--group",
            &group,
            "--explain",
            "agreed",
        ])
        .await;
    }
    // Ada holds no role: outcomes are now for co-chairs.
    let refused = ada
        .fails(&["outcome", &within, "--group", &group, "--explain", "agreed"])
        .await;
    assert!(
        refused.contains("holds no role with the power to write the outcome of closed proposals"),
        "{refused}"
    );
    let written = bea
        .ok(&["outcome", &within, "--group", &group, "--explain", "agreed"])
        .await;
    assert!(written.contains("Result: PASSED"), "{written}");

    // Wait out Bea's term.
    let shown = show(&bea, &group).await;
    let term_ends = shown["state"]["roles"]["co-chair"][bea.public_key()]["term_ends"]
        .as_u64()
        .unwrap();
    sleep_until(term_ends).await;
    let refused = bea
        .fails(&["outcome", &after, "--group", &group, "--explain", "agreed"])
        .await;
    assert!(refused.contains("error: the node refused: your key holds no role with the power to write the outcome of closed proposals at this time (code not_allowed)"), "{refused}");
    assert!(
        refused.contains("hint: ask a member who holds a role with that power"),
        "{refused}"
    );
    let text = bea.ok(&["group", "show", &group]).await;
    assert!(
        text.contains("co-chair: Bea") && text.contains("it no longer gives any power"),
        "{text}"
    );
    let written = cy
        .ok(&["outcome", &after, "--group", &group, "--explain", "agreed"])
        .await;
    assert!(written.contains("Result: PASSED"), "{written}");
    let log = bea.ok(&["group", "log", &group]).await;
    assert!(
        log.contains("the role 'co-chair' held by Bea")
            && log.contains("expired at the end of its term"),
        "{log}"
    );
}

/// Ada proposes removing Cy; Ada and Bea agree; Cy disagrees (heard, not counted).
/// Gives the proposal and outcome ids.
async fn remove_cy(group: &str, ada: &Person, bea: &Person, cy: &Person) -> (String, String) {
    let (proposal, closes) = propose(
        ada,
        group,
        "Cy leaves the rota",
        &["remove", &cy.public_key()],
    )
    .await;
    stances(
        group,
        &proposal,
        &[(ada, "agree"), (bea, "agree"), (cy, "disagree")],
    )
    .await;
    sleep_until(closes).await;
    let outcome = bea
        .ok(&[
            "outcome",
            &proposal,
            "--group",
            group,
            "--explain",
            "Agreed",
        ])
        .await;
    assert!(outcome.contains("Counted stances (2 of 2"), "{outcome}");
    assert!(
        outcome.contains("Heard, but not counted") && outcome.contains("  Cy: disagree"),
        "{outcome}"
    );
    assert!(outcome.contains("is removed from the group"), "{outcome}");
    let id = outcome
        .lines()
        .find_map(|l| l.strip_prefix("Outcome written: "))
        .unwrap()
        .to_owned();
    (proposal, id)
}

#[tokio::test]
async fn a_removed_member_can_no_longer_post() {
    let node = Node::start().await;
    let [ada, bea, cy] = [
        node.person("Ada").await,
        node.person("Bea").await,
        node.person("Cy").await,
    ];
    let group = circle(&[&ada, &bea, &cy], &open_rules(), false).await;
    cy.ok(&["post", "--group", &group, "Soup on Friday"]).await;
    remove_cy(&group, &ada, &bea, &cy).await;

    let refused = cy.fails(&["post", "--group", &group, "Still here"]).await;
    assert!(
        refused.contains("is not a member of this group"),
        "{refused}"
    );
    assert!(refused.contains("(code not_allowed)"), "{refused}");
    assert!(
        refused.contains("hint: only members can do this"),
        "{refused}"
    );
    let shown = show(&ada, &group).await;
    assert!(!members(&shown).contains(&cy.public_key()));
    assert_eq!(members(&shown).len(), 2);
    // Posting still works for members.
    bea.ok(&["post", "--group", &group, "Soup moved to Saturday"])
        .await;
}

#[tokio::test]
async fn a_backdated_post_by_a_removed_member_stays_hidden() {
    let node = Node::start().await;
    let [ada, bea, cy] = [
        node.person("Ada").await,
        node.person("Bea").await,
        node.person("Cy").await,
    ];
    let group = circle(&[&ada, &bea, &cy], &open_rules(), false).await;
    let (proposal, _) = remove_cy(&group, &ada, &bea, &cy).await;

    // Cy writes a post that cites only events from before the removal, as if written then.
    let group_id: GroupId = group.parse().unwrap();
    let parent: EventId = proposal.parse().unwrap();
    let body = PostBody {
        text: "I was never removed".into(),
    }
    .to_bytes();
    let post = EventBuilder::new(Kind::POST, kith_client::now(), body)
        .group(group_id)
        .parents([parent])
        .sign(&cy.key)
        .unwrap();
    let conn = Connection::connect(node.url()).await.unwrap();
    conn.login(&cy.key, None).await.unwrap();
    // The node judges an event by the state its parents establish (SPEC §8.4): there Cy
    // was a member, so it is stored. The removal horizon (§8.5) hides it in the state.
    conn.publish(&post)
        .await
        .expect("judged by its parents' state, the post is accepted");

    let node_view = conn.group_state(group_id).await.unwrap();
    let hidden = |state: &Value| {
        state["hidden"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| id == &post.id().to_hex())
    };
    assert!(hidden(&node_view["state"]), "{node_view}");
    let local = fetch_group(&conn, group_id).await.unwrap().unwrap();
    assert!(local.state().hidden.contains(&post.id()));
    assert!(!local.state().members.contains_key(&cy.key.public_key()));
    conn.close().await;

    let shown = show(&ada, &group).await;
    assert!(hidden(&shown["state"]), "{shown}");
    assert!(!members(&shown).contains(&cy.public_key()));
    assert_eq!(shown["agrees_with_node"], true);
    let text = ada.ok(&["group", "show", &group]).await;
    assert!(!text.contains(&cy.public_key()), "{text}");
    let log = ada.ok(&["group", "log", &group]).await;
    assert!(
        log.contains("1 event(s) by Cy") && log.contains("are hidden (kept, not shown)"),
        "{log}"
    );
    // Members carry on, citing the group's latest events (the hidden post among them).
    bea.ok(&["post", "--group", &group, "Soup on Saturday"])
        .await;
    assert!(hidden(&show(&bea, &group).await["state"]));
}

#[tokio::test]
async fn the_founder_leaves_and_the_group_carries_on() {
    let node = Node::start().await;
    let [ada, bea, cy] = [
        node.person("Ada").await,
        node.person("Bea").await,
        node.person("Cy").await,
    ];
    let group = circle(&[&ada, &bea, &cy], &open_rules(), false).await;
    let left = ada
        .ok(&[
            "group",
            "leave",
            &group,
            "--reason",
            "Moving away, thank you all",
        ])
        .await;
    assert!(left.contains("You left 'Eastside Food Share'"), "{left}");

    let (proposal, closes) = propose(&bea, &group, "Cy keeps the keys", &["decide"]).await;
    stances(&group, &proposal, &[(&bea, "agree"), (&cy, "agree")]).await;
    sleep_until(closes).await;
    let outcome = cy
        .ok(&[
            "outcome",
            &proposal,
            "--group",
            &group,
            "--explain",
            "Both agreed",
        ])
        .await;
    assert!(outcome.contains("Result: PASSED"), "{outcome}");
    assert!(outcome.contains("the decision is recorded"), "{outcome}");

    let shown = show(&bea, &group).await;
    assert_eq!(members(&shown).len(), 2);
    assert!(!members(&shown).contains(&ada.public_key()));
    let log = bea.ok(&["group", "log", &group]).await;
    assert!(
        log.contains("Ada (") && log.contains("left the group: Moving away, thank you all"),
        "{log}"
    );
    // Ada is no member now.
    let refused = ada
        .fails(&["post", "--group", &group, "I miss you all"])
        .await;
    assert!(
        refused.contains("is not a member of this group"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_private_group_is_read_by_members_only() {
    let node = Node::start().await;
    let [ada, bea, dee] = [
        node.person("Ada").await,
        node.person("Bea").await,
        node.person("Dee").await,
    ];
    // Bea cannot read the group before joining, so her join cites the invitation.
    let group = circle(&[&ada, &bea], &open_rules(), true).await;
    ada.ok(&["post", "--group", &group, "Rent strike meeting at 7"])
        .await;

    let outside = dee.ok(&["read", "--group", &group]).await;
    assert_eq!(outside.trim(), "No posts yet.");
    let refused = dee.fails(&["group", "show", &group]).await;
    assert!(refused.contains("(code members_only)"), "{refused}");
    assert!(
        refused.contains("hint: only its members can see this group"),
        "{refused}"
    );

    // Nor over plain HTTP, by anyone: no route lists a private group's events.
    for path in ["events", "state"] {
        let (status, body) =
            kith_tests::node::get_json(node.url(), &format!("/groups/{group}/{path}")).await;
        assert_eq!(status, 403, "/groups/…/{path}: {body}");
        assert_eq!(body["error"]["code"], "members_only", "{body}");
    }

    let inside = bea.ok(&["read", "--group", &group]).await;
    assert!(inside.contains("Rent strike meeting at 7"), "{inside}");
    let shown = bea.ok(&["group", "show", &group]).await;
    assert!(
        shown.contains("private: only members can read it"),
        "{shown}"
    );
    assert!(shown.contains("Members (2):"), "{shown}");
}

#[tokio::test]
async fn the_log_says_who_did_what_when_under_which_decision() {
    let node = Node::start().await;
    let [ada, bea, cy, dee] = [
        node.person("Ada").await,
        node.person("Bea").await,
        node.person("Cy").await,
        node.person("Dee").await,
    ];
    let group = circle(&[&ada, &bea, &cy, &dee], &open_rules(), false).await;
    let mut visible = Rules::mutual_aid_default();
    visible.stances_visible_before_answering = true;
    let rules_file = ada.rules_file(&visible);
    let (grant, _) = propose(
        &ada,
        &group,
        "Bea welcomes newcomers",
        &["grant-role", "welcomer", &bea.public_key(), "--term", "90d"],
    )
    .await;
    let (remove, _) = propose(
        &ada,
        &group,
        "Dee steps back",
        &["remove", &dee.public_key()],
    )
    .await;
    let (change, closes) = propose(
        &ada,
        &group,
        "Open stances",
        &["change-rules", "--rules", rules_file.to_str().unwrap()],
    )
    .await;
    for proposal in [&grant, &remove, &change] {
        let all: Vec<(&Person, &str)> = [&ada, &bea, &cy, &dee].map(|p| (p, "agree")).to_vec();
        stances(&group, proposal, &all).await;
    }
    sleep_until(closes).await;
    for proposal in [&grant, &remove, &change] {
        ada.ok(&[
            "outcome",
            proposal,
            "--group",
            &group,
            "--explain",
            "agreed",
        ])
        .await;
    }
    let (end, closes) = propose(
        &cy,
        &group,
        "Bea rests",
        &["end-role", "welcomer", &bea.public_key()],
    )
    .await;
    stances(
        &group,
        &end,
        &[(&ada, "agree"), (&bea, "agree"), (&cy, "agree")],
    )
    .await;
    sleep_until(closes).await;
    cy.ok(&[
        "outcome",
        &end,
        "--group",
        &group,
        "--explain",
        "Thanks Bea",
    ])
    .await;

    let log = bea.ok(&["group", "log", &group]).await;
    let line = |needle: &str| -> String {
        let lines: Vec<&str> = log.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no '{needle}' in:\n{log}"));
        format!("{}\n{}", lines[at], lines.get(at + 1).unwrap_or(&""))
    };
    let granted = line("role 'welcomer' granted to Bea (");
    assert!(granted.contains(" UTC · Ada ("), "{granted}");
    assert!(
        granted.contains(&format!(
            "under the decision 'Bea welcomes newcomers' (proposal {grant})"
        )),
        "{granted}"
    );
    let removed = line("is removed from the group");
    assert!(removed.contains("passed: Dee ("), "{removed}");
    assert!(
        removed.contains(&format!(
            "under the decision 'Dee steps back' (proposal {remove})"
        )),
        "{removed}"
    );
    let changed = line("the group's rules are changed");
    assert!(
        changed.contains(&format!(
            "under the decision 'Open stances' (proposal {change})"
        )),
        "{changed}"
    );
    let ended = line("no longer holds the role 'welcomer'");
    assert!(ended.contains(" UTC · Cy ("), "{ended}");
    assert!(
        ended.contains(&format!("under the decision 'Bea rests' (proposal {end})")),
        "{ended}"
    );
    let json = bea.json(&["group", "log", &group]).await;
    assert!(json["log"].as_array().unwrap().len() >= 8, "{json}");
}

#[tokio::test]
async fn missing_lists_who_has_no_stance_and_leaves_out_the_quiet() {
    let node = Node::start().await;
    let [ada, bea, cy, dee] = [
        node.person("Ada").await,
        node.person("Bea").await,
        node.person("Cy").await,
        node.person("Dee").await,
    ];
    let group = circle(&[&ada, &bea, &cy, &dee], &open_rules(), false).await;
    let quiet = cy.ok(&["group", "profile", &group, "--quiet"]).await;
    assert!(quiet.contains("You are left out of"), "{quiet}");
    let made = ada
        .json(&[
            "propose",
            &group,
            "--title",
            "Buy a second freezer",
            "--text",
            "The first one is full every week",
            "--closes-in",
            "10m",
            "decide",
        ])
        .await;
    let proposal = made["id"].as_str().unwrap();
    bea.ok(&["stance", proposal, "--group", &group, "agree"])
        .await;

    let missing = dee.ok(&["group", "missing", &group]).await;
    let waiting = missing
        .lines()
        .skip_while(|l| !l.contains("'Buy a second freezer'"))
        .nth(1)
        .unwrap();
    assert!(
        waiting.contains("Ada (") && waiting.contains("Dee ("),
        "{missing}"
    );
    assert!(
        !waiting.contains("Bea") && !waiting.contains("Cy"),
        "{missing}"
    );
    assert!(
        missing.contains("(1 member(s) who asked not to be listed are left out)"),
        "{missing}"
    );
    assert!(
        missing.contains("Members not heard from since"),
        "{missing}"
    );

    let json = dee.json(&["group", "missing", &group]).await;
    let listed = &json["proposals"][proposal]["missing"];
    let mut expected = vec![ada.public_key(), dee.public_key()];
    expected.sort();
    let mut got: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(json["proposals"][proposal]["quiet_left_out"], 1);
    assert_eq!(
        json["not_heard"],
        serde_json::json!([]),
        "everyone spoke lately"
    );
    // Cy can ask to be listed again.
    cy.ok(&["group", "profile", &group, "--not-quiet"]).await;
    let json = dee.json(&["group", "missing", &group]).await;
    assert_eq!(
        json["proposals"][proposal]["missing"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// A node holding more group events than `group_cache_events` keeps only the groups used
/// most recently in memory, reads the others back from the store when asked, and says so in
/// /metrics.
#[tokio::test]
async fn groups_beyond_the_cache_are_dropped_from_memory_and_read_back() {
    use kith_protocol::event::Timestamp;
    use kith_protocol::group::body::Visibility;
    use kith_tests::node::metric;
    use kith_tests::{seeded_key, TestGroup, TestNode};

    const BOUND: u64 = 30;
    let node = TestNode::start_with(|c| {
        c.group_cache_events = BOUND as usize;
        c.open_registration = true;
        c.connections.publish_burst = 1000.0;
        c.connections.key_publish_burst = 1000.0;
    })
    .await;
    let key = seeded_key(1);
    let conn = Connection::connect(&node.url()).await.unwrap();
    conn.login(&key, None).await.unwrap();
    // Six groups of ten events: twice what the cache holds.
    let start = kith_client::now().0 - 60_000;
    let mut groups = Vec::new();
    for g in 0..6u64 {
        let at = Timestamp(start + g * 100);
        let mut chain = TestGroup::create(&key, &format!("g{g}"), Visibility::Public, at);
        conn.publish(&chain.genesis).await.unwrap();
        for i in 1..10u64 {
            let post = chain.post_at(&key, &format!("post {i}"), Timestamp(at.0 + i));
            conn.publish(&post).await.unwrap();
        }
        groups.push(chain.id);
    }
    let url = node.url();
    let held = || async {
        (
            metric(&url, "kith_groups_loaded").await,
            metric(&url, "kith_group_events_loaded").await,
        )
    };
    let (count, events) = held().await;
    assert!(
        events <= BOUND && count <= 3,
        "{count} groups, {events} events held"
    );
    let loads_before = metric(&url, "kith_group_loads_total").await;

    // Each group in turn, twice: the same state every time (the last group's first as
    // built event by event while it was published, then as read back), never more than the
    // bound held.
    let mut digests = std::collections::HashMap::new();
    let (_, last) = node.get_json(&format!("/groups/{}/state", groups[5])).await;
    digests.insert(groups[5], last["digest"].as_str().unwrap().to_owned());
    for round in 0..2 {
        for group in &groups {
            let (status, view) = node.get_json(&format!("/groups/{group}/state")).await;
            assert_eq!(status, 200, "{view}");
            assert_eq!(view["events"], 10, "round {round}");
            let digest = view["digest"].as_str().unwrap().to_owned();
            assert_eq!(
                digests.entry(*group).or_insert_with(|| digest.clone()),
                &digest
            );
            let (count, events) = held().await;
            assert!(
                events <= BOUND && count <= 3,
                "{count} groups, {events} events held"
            );
            assert!(count >= 1);
        }
    }
    // Six groups in turn through a cache of three: each visit read one back from the store.
    let loads = metric(&url, "kith_group_loads_total").await - loads_before;
    assert!(loads >= 12, "{loads} loads");
    conn.close().await;
}
