//! `kith group create | default-rules | invite | join | leave | profile`: the group
//! commands that write an event about membership. Reading commands are in `group_view`.

use std::path::Path;

use kith_client::join_code::JOIN_CODE_PREFIX;
use kith_client::{JoinCode, ProfileName};
use kith_protocol::group::body::{
    self, GroupCreate, Invite, Join, Leave, NodeRef, Profile, SelfDescription, Visibility,
};
use kith_protocol::group::rules::Who;
use kith_protocol::group::{self, Rules};
use kith_protocol::{EventId, GroupId, Timestamp};
use serde_json::json;

use super::group_args::{GroupCommand, SelfArgs};
use super::group_view::{self, Look};
use super::homes::{self, holds, home_of, home_or_warn, JoinRequest, MoveRequest};
use super::output::{print_line, terminal_safe};
use super::report::Hinted;
use super::session::Session;
use super::words::{self, when, Names};

/// Carries out a `group` command.
pub(crate) async fn run(
    command: GroupCommand,
    profile: &ProfileName,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        GroupCommand::Create {
            node,
            group_name: name,
            purpose,
            private,
            rules,
            me,
        } => {
            let rules = match rules {
                Some(path) => read_rules(&path)?,
                None => Rules::mutual_aid_default(),
            };
            let visibility = if private {
                Visibility::Private
            } else {
                Visibility::Public
            };
            let create = GroupCreate {
                name,
                purpose,
                visibility,
                rules,
                founder: described(me, None),
                home: None,
            };
            let session = Session::writer(&node.address, profile).await?;
            let result = create_group(&session, &node.address, create, json).await;
            session.close().await;
            result
        }
        GroupCommand::DefaultRules => {
            print_line(&serde_json::to_string_pretty(&Rules::mutual_aid_default())?)
        }
        GroupCommand::Invite {
            node,
            group,
            uses,
            expires_in,
            note,
        } => {
            let session = Session::writer(&node.address, profile).await?;
            let request = InviteRequest {
                group,
                uses,
                expires_in: expires_in.millis,
                note,
                json,
            };
            let result = invite(&session, &node.address, request).await;
            session.close().await;
            result
        }
        GroupCommand::Join {
            node,
            target,
            via,
            wait,
            me,
        } => {
            let (group, via, code) = join_target(&target, via)?;
            let request = JoinRequest {
                group,
                via,
                me: described(me, None),
                wait,
                json,
            };
            let session = Session::writer(&node.address, profile).await?;
            let result = join_from(&session, &node.address, code, request).await;
            session.close().await;
            result
        }
        GroupCommand::Move {
            node,
            group,
            to,
            via,
            wait,
        } => {
            let request = MoveRequest {
                group,
                to,
                via: via.unwrap_or(node.address),
                wait,
                json,
            };
            homes::move_home(profile, request).await
        }
        GroupCommand::Leave {
            node,
            group,
            reason,
        } => {
            let session = Session::writer(&node.address, profile).await?;
            let result = leave(&session, group, reason, json).await;
            session.close().await;
            result
        }
        GroupCommand::Profile {
            node,
            group,
            me,
            quiet,
            not_quiet,
        } => {
            let session = Session::writer(&node.address, profile).await?;
            let quiet = match (quiet, not_quiet) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let result = update_profile(&session, &node.address, group, me, quiet, json).await;
            session.close().await;
            result
        }
        GroupCommand::Show { node, group } => {
            group_view::run(&node.address, group, Look::Show, profile, json).await
        }
        GroupCommand::Log { node, group } => {
            group_view::run(&node.address, group, Look::Log, profile, json).await
        }
        GroupCommand::Missing { node, group, since } => {
            group_view::run(
                &node.address,
                group,
                Look::Missing(since.millis),
                profile,
                json,
            )
            .await
        }
    }
}

/// A self-description from the flags, keeping what the flags leave out from `current`.
fn described(me: SelfArgs, current: Option<&SelfDescription>) -> SelfDescription {
    SelfDescription {
        name: me.name.or_else(|| current.and_then(|c| c.name.clone())),
        labels: if me.labels.is_empty() {
            current.map(|c| c.labels.clone()).unwrap_or_default()
        } else {
            me.labels
        },
    }
}

/// Reads and checks a rules file.
pub(crate) fn read_rules(path: &Path) -> anyhow::Result<Rules> {
    let template =
        "start from the defaults: `kith group default-rules > rules.json`, then edit that file";
    let text = std::fs::read_to_string(path).map_err(|e| {
        Hinted::new(
            format!("could not read the rules file {}: {e}", path.display()),
            template,
        )
    })?;
    let rules: Rules = serde_json::from_str(&text).map_err(|e| {
        Hinted::new(
            format!("the rules file {} is not valid: {e}", path.display()),
            template,
        )
    })?;
    rules.check().map_err(|e| {
        Hinted::new(
            format!("the rules in {} cannot be used: {e}", path.display()),
            template,
        )
    })?;
    Ok(rules)
}

async fn create_group(
    session: &Session,
    address: &str,
    mut create: GroupCreate,
    json: bool,
) -> anyhow::Result<()> {
    create.home = home_or_warn(address, &session.conn).await;
    let bytes = body::to_bytes(&create);
    if let Err(e) = GroupCreate::parse(&bytes, session.conn.limits()) {
        return Err(Hinted::new(
            format!("the group cannot be created: {e}"),
            "change it and try again",
        )
        .into());
    }
    let event = session.publish_genesis(bytes).await?;
    let id = GroupId::from(event.id());
    let rules_in_words = create.rules.describe();
    if json {
        return print_line(&json!({
            "id": id.to_hex(),
            "name": create.name,
            "visibility": create.visibility,
            "rules_in_words": rules_in_words,
            "home": create.home,
        }));
    }
    let private = create.visibility == Visibility::Private;
    let mut text = format!(
        "Created the group '{}' ({}).\nGroup id: {id}\nShare this id with the people you want to bring in.\n\nIts rules, in plain words:\n",
        terminal_safe(&create.name),
        if private { "private: only members can read it" } else { "public: anyone can read it" },
    );
    for line in &rules_in_words {
        text.push_str(&format!("  - {line}\n"));
    }
    if let Some(home) = &create.home {
        text.push_str(&format!(
            "\nYour home in it is your node, {}.\n",
            words::home(home)
        ));
    }
    text.push_str("\nNext: ");
    if create.rules.invite == Who::RoleHolders {
        text.push_str(&format!(
            "nobody holds a role yet, so people join by decision: `kith propose {id} --title … --text … \
             --closes-in 3d admit THEIR_KEY`. Or first give someone (yourself, say) a role that may invite: \
             `kith propose {id} … grant-role welcomer KEY --term 90d`."
        ));
    } else {
        text.push_str(&format!("invite people with `kith group invite {id}`."));
    }
    print_line(&text)
}

/// What `group invite` was asked to do.
struct InviteRequest {
    group: GroupId,
    uses: u32,
    /// How long it lasts, in milliseconds.
    expires_in: u64,
    note: Option<String>,
    json: bool,
}

async fn invite(session: &Session, address: &str, request: InviteRequest) -> anyhow::Result<()> {
    let InviteRequest {
        group,
        uses,
        expires_in,
        note,
        json,
    } = request;
    let mut local = session.group(group).await?;
    // Learned before writing, so that a node that cannot say its address is noticed first.
    let node = match home_of(address, &session.conn).await {
        Ok(home) => Some(home),
        Err(e) => {
            eprintln!(
                "warning: {e:#}. No join code can be made without it; on this node, people can                  still join with the group id and the invitation id"
            );
            None
        }
    };
    let expires = |at: Timestamp| Timestamp(at.0.saturating_add(expires_in));
    let body = |at| {
        body::to_bytes(&Invite {
            expires_at: expires(at),
            uses,
            note,
        })
    };
    let event = session.publish_in(&mut local, group::INVITE, body).await?;
    let id = event.id();
    let expires_at = expires(event.created_at());
    let code = node.map(|node| JoinCode::new(group, id, node.url));
    if json {
        return print_line(&json!({
            "id": id.to_hex(),
            "group": group.to_hex(),
            "uses": uses,
            "expires_at": expires_at.0,
            "join_code": code.as_ref().map(JoinCode::to_string),
        }));
    }
    let mut text = format!(
        "Invitation written: {id}\nUp to {uses} {} may join with it until {}.\n",
        if uses == 1 { "person" } else { "people" },
        when(expires_at, kith_client::now())
    );
    if let Some(code) = &code {
        text.push_str(&format!(
            "Give them this join code (one line; it works whichever node they use):\n  {code}\n\
             They join with:\n  kith group join {code}\n\
             On this node they can also join with the group id and this invitation id:\n  \
             kith group join {group} --via {id}"
        ));
    } else {
        text.push_str(&format!(
            "Give them the group id and this invitation id; they join with:\n  kith group join \
             {group} --via {id}"
        ));
    }
    print_line(&text)
}

/// What `group join` was given: a join code, or a group id with --via.
fn join_target(
    target: &str,
    via: Option<EventId>,
) -> anyhow::Result<(GroupId, EventId, Option<JoinCode>)> {
    let target = target.trim();
    if target.starts_with(JOIN_CODE_PREFIX) {
        let code: JoinCode = target.parse().map_err(|e| {
            Hinted::new(
                format!("that join code cannot be read: {e}"),
                "copy the whole line that `kith group invite` printed, from kith-join: to the end \
                 of the node address, with nothing added or left out",
            )
        })?;
        if via.is_some_and(|via| via != code.invite) {
            return Err(Hinted::new(
                "the join code names one invitation and --via another",
                "leave out --via: the join code already names the invitation",
            )
            .into());
        }
        return Ok((code.group, code.invite, Some(code)));
    }
    let group: GroupId = target.parse().map_err(|_| {
        Hinted::new(
            format!(
                "'{}' is neither a join code nor a group id",
                terminal_safe(target)
            ),
            "paste the join code you were given (it starts with kith-join:), or give the group id \
             (64 characters of 0-9 and a-f) and --via INVITATION_ID",
        )
    })?;
    let via = via.ok_or_else(|| {
        Hinted::new(
            "with a group id, kith needs the invitation (or the decision that admitted you) too",
            "add --via INVITATION_ID, or paste the join code you were given (kith-join:…) instead \
             of the group id",
        )
    })?;
    Ok((group, via, None))
}

/// `group join`: on the own node if it holds the group; otherwise, with a join code,
/// through the node the code names.
async fn join_from(
    session: &Session,
    address: &str,
    code: Option<JoinCode>,
    request: JoinRequest,
) -> anyhow::Result<()> {
    let group = request.group;
    if holds(&session.conn, group).await? {
        let home = home_or_warn(address, &session.conn).await;
        return join(session, request, home).await;
    }
    match code {
        Some(code) => homes::join_elsewhere(session, address, &code, request).await,
        None => Err(Hinted::new(
            format!("your node ({address}) does not hold group {group}"),
            "ask the person who invited you for the join code that `kith group invite` printed \
             (kith-join:…): it names the node to send your join to",
        )
        .into()),
    }
}

/// Joins on the own node, which holds the group.
async fn join(
    session: &Session,
    request: JoinRequest,
    home: Option<NodeRef>,
) -> anyhow::Result<()> {
    let JoinRequest {
        group,
        via,
        me,
        json,
        ..
    } = request;
    let body = body::to_bytes(&Join {
        via,
        me,
        home: home.clone(),
    });
    let (event, name) = match session.group_if_readable(group).await? {
        Some(mut local) => {
            let event = session
                .publish_in(&mut local, group::JOIN, |_| body)
                .await?;
            (event, Some(local.state().name.clone()))
        }
        // A private group cannot be read before joining: cite the invitation (or the
        // admitting outcome) itself, which the node checks the join against.
        None => (
            session
                .publish_blind(group, group::JOIN, vec![via], body)
                .await?,
            None,
        ),
    };
    if json {
        return print_line(&json!({
            "id": event.id().to_hex(),
            "group": group.to_hex(),
            "joined": true,
            "home": home,
        }));
    }
    let name = name
        .map(|n| format!("'{}'", terminal_safe(&n)))
        .unwrap_or_else(|| "the group".into());
    print_line(&format!(
        "You joined {name}. See it with: kith group show {group}"
    ))
}

async fn leave(
    session: &Session,
    group: GroupId,
    reason: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let mut local = session.group(group).await?;
    let body = body::to_bytes(&Leave { reason });
    let event = session
        .publish_in(&mut local, group::LEAVE, |_| body)
        .await?;
    if json {
        return print_line(
            &json!({ "id": event.id().to_hex(), "group": group.to_hex(), "left": true }),
        );
    }
    print_line(&format!(
        "You left '{}'. What you wrote there stays; the group can invite you back.",
        terminal_safe(&local.state().name)
    ))
}

async fn update_profile(
    session: &Session,
    address: &str,
    group: GroupId,
    me: SelfArgs,
    quiet: Option<bool>,
    json: bool,
) -> anyhow::Result<()> {
    let mut local = session.group(group).await?;
    let current = session
        .me()
        .and_then(|key| local.state().members.get(&key))
        .cloned();
    let home = home_or_warn(address, &session.conn).await;
    let before = current.as_ref().and_then(|m| m.home.clone());
    let profile = Profile {
        me: described(me, current.as_ref().map(|m| &m.me)),
        quiet: quiet.unwrap_or_else(|| current.as_ref().is_some_and(|m| m.quiet)),
        home,
    };
    let body = body::to_bytes(&profile);
    let event = session
        .publish_in(&mut local, group::PROFILE, |_| body)
        .await?;
    if json {
        return print_line(&json!({
            "id": event.id().to_hex(),
            "group": group.to_hex(),
            "me": profile.me,
            "quiet": profile.quiet,
            "home": profile.home.as_ref().or(before.as_ref()),
        }));
    }
    let names = Names::of(&local);
    let who = session.me().map(|k| names.who(&k)).unwrap_or_default();
    let labels = if profile.me.labels.is_empty() {
        "no labels".to_owned()
    } else {
        format!("labels: {}", terminal_safe(&profile.me.labels.join(", ")))
    };
    let listed = if profile.quiet {
        "You are left out of \"not heard from\" and \"no stance yet\" lists."
    } else {
        "You are listed when you have not been heard from or have not given a stance."
    };
    let moved = match (&profile.home, &before) {
        (Some(now), Some(before)) if now != before => format!(
            "\nYour home in it is now {} (before: {}): the group sends its events there.",
            words::home(now),
            words::home(before)
        ),
        (Some(now), None) => format!("\nYour home in it is {}.", words::home(now)),
        _ => String::new(),
    };
    print_line(&format!(
        "Your profile in '{}': {who}, {labels}.\n{listed}{moved}",
        terminal_safe(&local.state().name)
    ))
}

#[cfg(test)]
mod tests {
    use super::super::report;
    use super::*;

    fn hint(error: &anyhow::Error) -> String {
        report::hint(error).unwrap_or_default()
    }

    #[test]
    fn join_reads_a_code_or_a_group_id_with_via() {
        let (g, i) = ("ab".repeat(32), "cd".repeat(32));
        let code = format!("kith-join:{g}:{i}@https://node.example.org");
        let (group, via, parsed) = join_target(&format!(" {code} "), None).unwrap();
        assert_eq!((group.to_hex(), via.to_hex()), (g.clone(), i.clone()));
        assert_eq!(parsed.unwrap().node_url, "https://node.example.org");
        let same_via: EventId = i.parse().unwrap();
        assert!(join_target(&code, Some(same_via)).is_ok());

        let (group, via, parsed) = join_target(&g, Some(same_via)).unwrap();
        assert_eq!((group.to_hex(), via, parsed), (g.clone(), same_via, None));
    }

    #[test]
    fn join_explains_what_it_cannot_read() {
        let (g, i) = ("ab".repeat(32), "cd".repeat(32));
        let broken = format!("kith-join:{g}:{i}");
        let err = join_target(&broken, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("that join code cannot be read: it should read kith-join:"),
            "{err}"
        );
        assert!(
            hint(&err).starts_with("copy the whole line"),
            "{}",
            hint(&err)
        );

        let other: EventId = "ef".repeat(32).parse().unwrap();
        let err = join_target(&format!("{broken}@http://h:1"), Some(other)).unwrap_err();
        assert_eq!(
            hint(&err),
            "leave out --via: the join code already names the invitation"
        );

        let err = join_target("hello", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'hello' is neither a join code nor a group id"
        );
        assert!(hint(&err).contains("kith-join:"), "{}", hint(&err));

        let err = join_target(&g, None).unwrap_err();
        assert!(
            hint(&err).starts_with("add --via INVITATION_ID"),
            "{}",
            hint(&err)
        );
    }
}
