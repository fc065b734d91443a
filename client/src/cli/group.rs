//! `kith group create | default-rules | invite | join | leave | profile`: the group
//! commands that write an event about membership. Reading commands are in `group_view`.

use std::path::Path;

use kith_client::ProfileName;
use kith_protocol::group::body::{
    self, GroupCreate, Invite, Join, Leave, Profile, SelfDescription, Visibility,
};
use kith_protocol::group::rules::Who;
use kith_protocol::group::{self, Rules};
use kith_protocol::{GroupId, Timestamp};
use serde_json::json;

use super::group_args::{GroupCommand, SelfArgs};
use super::group_view::{self, Look};
use super::output::{print_line, terminal_safe};
use super::report::Hinted;
use super::session::Session;
use super::words::{when, Names};

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
            };
            create_group(&node.address, profile, create, json).await
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
            let result = invite(&session, group, uses, expires_in.millis, note, json).await;
            session.close().await;
            result
        }
        GroupCommand::Join {
            node,
            group,
            via,
            me,
        } => {
            let session = Session::writer(&node.address, profile).await?;
            let result = join(&session, group, via, described(me, None), json).await;
            session.close().await;
            result
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
            let result = update_profile(&session, group, me, quiet, json).await;
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
    address: &str,
    profile: &ProfileName,
    create: GroupCreate,
    json: bool,
) -> anyhow::Result<()> {
    let session = Session::writer(address, profile).await?;
    let bytes = body::to_bytes(&create);
    if let Err(e) = GroupCreate::parse(&bytes, session.conn.limits()) {
        session.close().await;
        return Err(Hinted::new(
            format!("the group cannot be created: {e}"),
            "change it and try again",
        )
        .into());
    }
    let result = session.publish_genesis(bytes).await;
    session.close().await;
    let event = result?;
    let id = GroupId::from(event.id());
    let words = create.rules.describe();
    if json {
        return print_line(&json!({
            "id": id.to_hex(),
            "name": create.name,
            "visibility": create.visibility,
            "rules_in_words": words,
        }));
    }
    let private = create.visibility == Visibility::Private;
    let mut text = format!(
        "Created the group '{}' ({}).\nGroup id: {id}\nShare this id with the people you want to bring in.\n\nIts rules, in plain words:\n",
        terminal_safe(&create.name),
        if private { "private: only members can read it" } else { "public: anyone can read it" },
    );
    for line in &words {
        text.push_str(&format!("  - {line}\n"));
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

async fn invite(
    session: &Session,
    group: GroupId,
    uses: u32,
    expires_in: u64,
    note: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let mut local = session.group(group).await?;
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
    if json {
        return print_line(&json!({
            "id": id.to_hex(),
            "group": group.to_hex(),
            "uses": uses,
            "expires_at": expires_at.0,
        }));
    }
    print_line(&format!(
        "Invitation written: {id}\nUp to {uses} {} may join with it until {}.\nGive them the group id and this \
         invitation id; they join with:\n  kith group join {group} --via {id}",
        if uses == 1 { "person" } else { "people" },
        when(expires_at, kith_client::now())
    ))
}

async fn join(
    session: &Session,
    group: GroupId,
    via: kith_protocol::EventId,
    me: SelfDescription,
    json: bool,
) -> anyhow::Result<()> {
    let body = body::to_bytes(&Join { via, me });
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
        return print_line(
            &json!({ "id": event.id().to_hex(), "group": group.to_hex(), "joined": true }),
        );
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
    let profile = Profile {
        me: described(me, current.as_ref().map(|m| &m.me)),
        quiet: quiet.unwrap_or_else(|| current.as_ref().is_some_and(|m| m.quiet)),
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
    print_line(&format!(
        "Your profile in '{}': {who}, {labels}.\n{listed}",
        terminal_safe(&local.state().name)
    ))
}
