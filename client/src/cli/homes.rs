//! Members' homes: the node each member lives on, named in their create, join and
//! profile events so that nodes send the group's events there. Here: learning a node's
//! public address, joining through the inviter's node with a join code (`group join
//! CODE`), moving home (`group move`), and waiting for a node to receive a group.

use std::time::Duration;

use anyhow::Context as _;
use kith_client::identity::DEFAULT_PROFILE;
use kith_client::{
    fetch_group, node_info, ClientError, Connection, JoinCode, KeyStore, LocalGroup, ProfileName,
};
use kith_protocol::frame::ErrorCode;
use kith_protocol::group;
use kith_protocol::group::body::{self, Join, NodeRef, Profile, SelfDescription};
use kith_protocol::{Event, EventId, GroupId, PublicKey};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::id;
use super::output::{print_line, short_key, terminal_safe};
use super::report::Hinted;
use super::session::Session;
use super::words;

/// How often a node is asked whether it has received a group yet.
const POLL: Duration = Duration::from_millis(500);

/// The node at `address` as a home: its key and public address from its
/// `/.well-known/kith`, checked against the key it greeted `conn` with.
pub(crate) async fn home_of(address: &str, conn: &Connection) -> anyhow::Result<NodeRef> {
    let info = node_info(address)
        .await
        .with_context(|| format!("could not learn the public address of the node at {address}"))?;
    if info.node != conn.node_key() {
        return Err(Hinted::new(
            format!(
                "the node at {address} names itself {} over HTTP but greets as {} over its \
                 WebSocket",
                short_key(&info.node),
                short_key(&conn.node_key())
            ),
            "the address may lead to two different nodes; tell the node's admin",
        )
        .into());
    }
    Ok(info.home())
}

/// [`home_of`], or `None` with a warning: for events that can do without naming a home.
pub(crate) async fn home_or_warn(address: &str, conn: &Connection) -> Option<NodeRef> {
    match home_of(address, conn).await {
        Ok(home) => Some(home),
        Err(e) => {
            eprintln!(
                "warning: {e:#}. Your home is not named this time, so other nodes may not send \
                 this group's events to your node"
            );
            None
        }
    }
}

/// Whether the node on `conn` holds `group`: it has it, even if this connection may not
/// read it (a private group).
pub(crate) async fn holds(conn: &Connection, group: GroupId) -> anyhow::Result<bool> {
    match conn.group_state(group).await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(ErrorCode::MembersOnly) => Ok(true),
        Err(e) if e.code() == Some(ErrorCode::UnknownGroup) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Asks the node on `conn` for its account of `group` every half second, for at most
/// `secs` seconds, until `done` holds for it. `None` if time ran out first.
async fn wait_until(
    conn: &Connection,
    group: GroupId,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Option<Value>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match conn.group_state(group).await {
            Ok(view) if done(&view) => return Ok(Some(view)),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::UnknownGroup | ErrorCode::MembersOnly)
                ) => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() + POLL > deadline {
            return Ok(None);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `member` in a node's account of a group (`group_state`), if they are a member.
fn member_in<'v>(view: &'v Value, member: &PublicKey) -> Option<&'v Value> {
    view.get("state")?.get("members")?.get(member.to_string())
}

/// The home a node's account of a group gives `member`.
fn home_in(view: &Value, member: &PublicKey) -> Option<NodeRef> {
    let home = member_in(view, member)?.get("home")?;
    serde_json::from_value(home.clone()).ok()
}

/// The group's name in a node's account of it.
fn name_in(view: &Value) -> Option<String> {
    view.get("state")?
        .get("name")?
        .as_str()
        .map(|name| format!("'{}'", terminal_safe(name)))
}

/// A line about what is happening: on standard output, or on standard error with --json
/// (which keeps standard output for the one JSON answer).
fn progress(json: bool, line: &str) -> anyhow::Result<()> {
    if json {
        eprintln!("{line}");
        Ok(())
    } else {
        print_line(&line)
    }
}

/// A refusal of an event sent without logging in, explained when the node takes no such
/// events at all.
fn announcement_refused(error: anyhow::Error, address: &str) -> anyhow::Error {
    let auth_required = error
        .downcast_ref::<ClientError>()
        .is_some_and(|e| e.code() == Some(ErrorCode::AuthRequired));
    if !auth_required {
        return error;
    }
    Hinted::new(
        format!("{error}"),
        format!(
            "the node at {address} takes nothing from people it does not know, even when their \
             home is another node; it may run an older version. Ask its admin, or ask a member \
             whose node can take it"
        ),
    )
    .into()
}

/// What `group join` was asked to do.
#[derive(Debug)]
pub(crate) struct JoinRequest {
    /// The group.
    pub(crate) group: GroupId,
    /// The invitation or admitting outcome.
    pub(crate) via: EventId,
    /// How the newcomer presents themselves.
    pub(crate) me: SelfDescription,
    /// How long to wait for the own node to receive the group, in seconds.
    pub(crate) wait: u64,
    /// Print JSON.
    pub(crate) json: bool,
}

/// `group join CODE` when the own node (logged in on `own`) does not hold the group: the
/// join, naming the own node as home, goes without a login to the node named in the code,
/// which checks it with the group's rules; then the own node should receive the group
/// from it.
pub(crate) async fn join_elsewhere(
    own: &Session,
    own_address: &str,
    code: &JoinCode,
    request: JoinRequest,
) -> anyhow::Result<()> {
    let group = request.group;
    let me = own.me().context("there is no identity to sign with")?;
    let home = home_of(own_address, &own.conn).await?;
    let inviter = code.node_url.as_str();
    let conn = Connection::connect(inviter)
        .await
        .with_context(|| format!("could not reach {inviter}, the node named in the join code"))?;
    let join = Join {
        via: request.via,
        me: request.me,
        home: Some(home.clone()),
    };
    let sent = send_join(&own.anonymous_on(conn.clone()), inviter, group, join).await;
    conn.close().await;
    let event = sent.map_err(|e| announcement_refused(e, inviter))?;

    let done = |text: String, holds: bool| -> anyhow::Result<()> {
        if request.json {
            return print_line(&json!({
                "id": event.id().to_hex(),
                "group": group.to_hex(),
                "joined": true,
                "through": inviter,
                "home": home,
                "home_holds_group": holds,
            }));
        }
        print_line(&text)
    };
    if request.wait == 0 {
        return done(
            format!(
                "Your join was accepted by {inviter}. Your node ({own_address}) receives the group \
                 once the two nodes have linked; see whether it has with: kith group show {group}"
            ),
            false,
        );
    }
    progress(
        request.json,
        &format!(
            "Your join was accepted by {inviter}; waiting for {own_address} to receive the group…"
        ),
    )?;
    let view = wait_until(&own.conn, group, request.wait, |view| {
        member_in(view, &me).is_some()
    })
    .await?;
    let Some(view) = view else {
        return Err(Hinted::new(
            format!(
                "your join was accepted by {inviter}, but your node ({own_address}) has not \
                 received the group within {} seconds",
                request.wait
            ),
            format!(
                "the nodes may still be linking; nothing needs to be sent again. See later \
                 whether your node has it with `kith group show {group}`"
            ),
        )
        .into());
    };
    let name = name_in(&view).unwrap_or_else(|| "the group".into());
    done(
        format!(
            "You joined {name} through {inviter}. Your node ({own_address}) has received the \
             group and is your home in it.\nSee it with: kith group show {group}"
        ),
        true,
    )
}

/// Publishes a join on `sender` (not logged in) to a node that holds the group: citing the
/// group's latest events when the group can be read there (checked here as always), or
/// the invitation alone when it is private.
async fn send_join(
    sender: &Session,
    address: &str,
    group: GroupId,
    join: Join,
) -> anyhow::Result<Event> {
    let via = join.via;
    let bytes = body::to_bytes(&join);
    match fetch_group(&sender.conn, group).await? {
        Some(mut local) => {
            warn_about(&local);
            sender.publish_in(&mut local, group::JOIN, |_| bytes).await
        }
        None if holds(&sender.conn, group).await? => {
            sender
                .publish_blind(group, group::JOIN, vec![via], bytes)
                .await
        }
        None => Err(Hinted::new(
            format!("the node named in the join code ({address}) does not hold group {group}"),
            "check that you pasted the whole join code; if you did, ask the person who invited \
             you for a new one",
        )
        .into()),
    }
}

/// Warns about events the node sent that could not be used.
fn warn_about(local: &LocalGroup) {
    for error in local.rejected() {
        eprintln!("warning: {error}");
    }
}

/// What `group move` was asked to do.
#[derive(Debug)]
pub(crate) struct MoveRequest {
    /// The group.
    pub(crate) group: GroupId,
    /// The new home's address.
    pub(crate) to: String,
    /// The node to send the move through.
    pub(crate) via: String,
    /// How long to wait for the new node to receive the group, in seconds.
    pub(crate) wait: u64,
    /// Print JSON.
    pub(crate) json: bool,
}

/// `group move`: names a new home in a profile, sent through `via`, and waits until the
/// new node holds the group with that home.
pub(crate) async fn move_home(profile: &ProfileName, request: MoveRequest) -> anyhow::Result<()> {
    let store = KeyStore::from_env()?;
    let key = id::load(&store, profile)?;
    let to = request.to.as_str();
    let new_node = Connection::connect(to)
        .await
        .with_context(|| format!("could not reach your new node at {to}"))?;
    let result = async {
        let new_home = home_of(to, &new_node).await?;
        if let Err(e) = new_node.login(&key, None).await {
            if e.code() == Some(ErrorCode::NotRegistered) {
                let flag = if profile.as_str() == DEFAULT_PROFILE {
                    String::new()
                } else {
                    format!(" --profile {profile}")
                };
                return Err(Hinted::new(
                    format!(
                        "your identity ({}) is not registered on {to}",
                        short_key(&key.public_key())
                    ),
                    format!("run `kith register --node {to} --invite CODE{flag}` first"),
                )
                .into());
            }
            return Err(e.into());
        }
        let via = Session::signer(&request.via, key.clone())
            .await
            .with_context(|| format!("could not send the move through {}", request.via))?;
        let sent = send_move(&via, &request, &new_home).await;
        via.close().await;
        let sent = sent?;
        wait_for_move(&new_node, &key.public_key(), &request, &new_home, sent).await
    }
    .await;
    new_node.close().await;
    result
}

/// What a move sent: the profile event (none if the home was already there), the group's
/// name, and the home before.
struct Sent {
    event: Option<Event>,
    name: String,
    before: Option<NodeRef>,
}

/// Sends the profile naming `new_home`, keeping how the member presents themselves.
async fn send_move(
    via: &Session,
    request: &MoveRequest,
    new_home: &NodeRef,
) -> anyhow::Result<Sent> {
    let group = request.group;
    let address = request.via.as_str();
    let me = via.me().context("there is no identity to sign with")?;
    let Some(mut local) = fetch_group(&via.conn, group).await? else {
        let (message, hint) = if !holds(&via.conn, group).await? {
            (
                format!("{address} does not hold group {group}"),
                "send the move through a node that holds the group: your current node (--node), \
                 or another with --via URL"
                    .to_owned(),
            )
        } else if !via.logged_in() {
            (
                format!(
                    "group {group} is private, and you are not registered on {address}, so it \
                     cannot be read there"
                ),
                "send the move through a node where you are registered that holds the group \
                 (--node, or --via URL)"
                    .to_owned(),
            )
        } else {
            (
                format!("{address} does not let you read group {group}"),
                "check that you are a member, and that you use the identity you joined with \
                 (--profile NAME)"
                    .to_owned(),
            )
        };
        return Err(Hinted::new(message, hint).into());
    };
    warn_about(&local);
    let name = local.state().name.clone();
    let Some(current) = local.state().members.get(&me).cloned() else {
        return Err(Hinted::new(
            format!("you are not a member of '{}'", terminal_safe(&name)),
            "only members have a home in a group; join it first with `kith group join`",
        )
        .into());
    };
    if current.home.as_ref() == Some(new_home) {
        return Ok(Sent {
            event: None,
            name,
            before: current.home,
        });
    }
    let profile = Profile {
        me: current.me.clone(),
        quiet: current.quiet,
        home: Some(new_home.clone()),
    };
    let bytes = body::to_bytes(&profile);
    let event = via
        .publish_in(&mut local, group::PROFILE, |_| bytes)
        .await
        .map_err(|e| announcement_refused(e, address))?;
    Ok(Sent {
        event: Some(event),
        name,
        before: current.home,
    })
}

/// Waits until the new node holds the group with the member's new home, and says so.
async fn wait_for_move(
    new_node: &Connection,
    me: &PublicKey,
    request: &MoveRequest,
    new_home: &NodeRef,
    sent: Sent,
) -> anyhow::Result<()> {
    let (group, to, via) = (request.group, request.to.as_str(), request.via.as_str());
    let name = format!("'{}'", terminal_safe(&sent.name));
    let arrived = if request.wait == 0 {
        None
    } else {
        let line = match sent.event {
            Some(_) => {
                format!("Your move was accepted by {via}; waiting for {to} to receive the group…")
            }
            None => {
                format!("Your home in {name} is already {to}; checking that it holds the group…")
            }
        };
        progress(request.json, &line)?;
        wait_until(new_node, group, request.wait, |view| {
            home_in(view, me).is_some_and(|home| home.node == new_home.node)
        })
        .await?
    };
    if request.wait > 0 && arrived.is_none() {
        return Err(Hinted::new(
            format!(
                "your move was accepted by {via}, but {to} has not received the group within {} \
                 seconds",
                request.wait
            ),
            format!(
                "the nodes may still be linking; nothing needs to be sent again. See later \
                 whether it has with `kith group show {group} --node {to}`"
            ),
        )
        .into());
    }
    if request.json {
        return print_line(&json!({
            "id": sent.event.as_ref().map(|e| e.id().to_hex()),
            "group": group.to_hex(),
            "home": new_home,
            "previous_home": sent.before,
            "through": via,
            "home_holds_group": arrived.is_some(),
        }));
    }
    let mut text = if sent.event.is_none() {
        format!(
            "Your home in {name} was already {}.\n",
            words::home(new_home)
        )
    } else {
        let before = sent
            .before
            .as_ref()
            .map(|home| format!(" (before: {})", words::home(home)))
            .unwrap_or_default();
        format!(
            "Your home in {name} is now {}{before}.\nYou keep the same key, and everything you \
             wrote stays valid; the group sends its events to your new node.\n",
            words::home(new_home)
        )
    };
    if arrived.is_some() {
        text.push_str(&format!("{to} holds the group now. "));
    } else {
        text.push_str(&format!(
            "{to} receives the group once the nodes have linked; see whether it has with: kith \
             group show {group} --node {to}\n"
        ));
    }
    text.push_str(&format!(
        "From now on use it with --node {to} (or set KITH_NODE={to})."
    ));
    print_line(&text)
}
