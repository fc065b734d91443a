//! What every group command does around its own work: connect, log in, fetch the group's
//! events and fold them here, sign new events citing the group's latest events, and
//! explain a refusal with what to do next.

use anyhow::Context as _;
use kith_client::{fetch_group, ClientError, Connection, KeyStore, LocalGroup, ProfileName};
use kith_protocol::frame::ErrorCode;
use kith_protocol::group::{GroupError, Power};
use kith_protocol::{Event, EventBuilder, EventId, GroupId, Kind, PublicKey, SecretKey, Timestamp};

use super::id;
use super::report::Hinted;
use super::words::Names;

/// A connection to a node, logged in when there is an identity to log in with.
pub(crate) struct Session {
    pub(crate) conn: Connection,
    key: Option<SecretKey>,
    logged_in: bool,
}

impl Session {
    /// For reading: connects, and logs in if this profile has an identity registered on the
    /// node (needed to read private groups; reading public ones needs no login).
    pub(crate) async fn reader(address: &str, profile: &ProfileName) -> anyhow::Result<Session> {
        let key = KeyStore::from_env()
            .and_then(|store| store.load(profile))
            .ok();
        let conn = Connection::connect(address).await?;
        let key = match key {
            Some(key) if conn.login(&key, None).await.is_ok() => Some(key),
            _ => None,
        };
        let logged_in = key.is_some();
        Ok(Session {
            conn,
            key,
            logged_in,
        })
    }

    /// For writing: connects and logs in with this profile's identity.
    pub(crate) async fn writer(address: &str, profile: &ProfileName) -> anyhow::Result<Session> {
        let store = KeyStore::from_env()?;
        let key = id::load(&store, profile)?;
        let conn = Connection::connect(address).await?;
        if let Err(e) = conn.login(&key, None).await {
            conn.close().await;
            return Err(e.into());
        }
        Ok(Session {
            conn,
            key: Some(key),
            logged_in: true,
        })
    }

    /// For signing with `key` on a node that may not know it: connects, and logs in if
    /// the key is registered there. Without a login the node takes only events that name
    /// another node as the author's home (a "home announcement").
    pub(crate) async fn signer(address: &str, key: SecretKey) -> anyhow::Result<Session> {
        let conn = Connection::connect(address).await?;
        let logged_in = match conn.login(&key, None).await {
            Ok(()) => true,
            Err(e) if e.code() == Some(ErrorCode::NotRegistered) => {
                // A refused login leaves the connection usable, not logged in.
                false
            }
            Err(e) => {
                conn.close().await;
                return Err(e.into());
            }
        };
        Ok(Session {
            conn,
            key: Some(key),
            logged_in,
        })
    }

    /// For signing with this session's key on `conn`, another node's connection, without
    /// logging in there (a home announcement).
    pub(crate) fn anonymous_on(&self, conn: Connection) -> Session {
        Session {
            conn,
            key: self.key.clone(),
            logged_in: false,
        }
    }

    /// The key this session signs with (the logged-in key, for a reader), if any.
    pub(crate) fn me(&self) -> Option<PublicKey> {
        self.key.as_ref().map(SecretKey::public_key)
    }

    /// Whether this connection is logged in.
    pub(crate) fn logged_in(&self) -> bool {
        self.logged_in
    }

    fn key(&self) -> anyhow::Result<&SecretKey> {
        self.key
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("there is no identity to sign with"))
    }

    /// Fetches the group and folds it here; explains why if it cannot be read.
    pub(crate) async fn group(&self, group: GroupId) -> anyhow::Result<LocalGroup> {
        load_group(&self.conn, group).await
    }

    /// Fetches the group if the node lets this connection read it; `None` if not (e.g. a
    /// private group, before joining it).
    pub(crate) async fn group_if_readable(
        &self,
        group: GroupId,
    ) -> anyhow::Result<Option<LocalGroup>> {
        Ok(fetch_group(&self.conn, group).await?)
    }

    /// Compares the state folded here with the node's own account, and says so on
    /// standard error if they differ. Returns whether they agree (`None`: could not tell).
    pub(crate) async fn compare_with_node(&self, local: &LocalGroup) -> Option<bool> {
        let view = self.conn.group_state(local.id()).await.ok()?;
        let agrees = local.agrees_with(&view);
        if agrees == Some(false) {
            eprintln!(
                "note: the node's own summary of this group differs from what this computer worked \
                 out from the group's signed events (an event may have arrived in between). What \
                 is shown here is this computer's own account."
            );
        }
        agrees
    }

    /// Signs an event of `kind` in the group, citing the group's latest events and dated
    /// no earlier than them, and publishes it. `body` makes the body from the event's time
    /// (for times relative to it, like a closing time). On success the event is added to
    /// `local`.
    pub(crate) async fn publish_in(
        &self,
        local: &mut LocalGroup,
        kind: Kind,
        body: impl FnOnce(Timestamp) -> Vec<u8>,
    ) -> anyhow::Result<Event> {
        let parents = local.parents(self.conn.limits().max_parents);
        let at = local.time_after(&parents, kith_client::now());
        let event = self.sign(kind, local.id(), parents, at, body(at))?;
        match self.conn.publish(&event).await {
            Ok(_) => {
                if let Err(e) = local.insert(event.clone()) {
                    eprintln!("warning: the node stored the event, but this computer's copy of the group refuses it ({e}); `kith group show` shows the group as it is now");
                }
                Ok(event)
            }
            Err(error) => Err(explain_refusal(error, local, &event)),
        }
    }

    /// Signs and publishes a group event with the given parents and time, for when the
    /// group cannot be read (joining a private group).
    pub(crate) async fn publish_blind(
        &self,
        group: GroupId,
        kind: Kind,
        parents: Vec<EventId>,
        body: Vec<u8>,
    ) -> anyhow::Result<Event> {
        let event = self.sign(kind, group, parents, kith_client::now(), body)?;
        self.conn
            .publish(&event)
            .await
            .map_err(|error| refusal(error, None, group))?;
        Ok(event)
    }

    fn sign(
        &self,
        kind: Kind,
        group: GroupId,
        parents: Vec<EventId>,
        at: Timestamp,
        body: Vec<u8>,
    ) -> anyhow::Result<Event> {
        let mut builder = EventBuilder::new(kind, at, body).parents(parents);
        if kind != kith_protocol::group::GROUP_CREATE {
            builder = builder.group(group);
        }
        builder
            .sign(self.key()?)
            .context("could not sign the event")
    }

    /// Signs and publishes a group's creating event.
    pub(crate) async fn publish_genesis(&self, body: Vec<u8>) -> anyhow::Result<Event> {
        let event = EventBuilder::new(kith_protocol::group::GROUP_CREATE, kith_client::now(), body)
            .sign(self.key()?)
            .context("could not sign the event")?;
        self.conn.publish(&event).await?;
        Ok(event)
    }

    /// Closes the connection.
    pub(crate) async fn close(self) {
        self.conn.close().await;
    }
}

/// Fetches a group's events and folds them here; explains why if the group cannot be
/// read, and warns about events that had to be left out.
pub(crate) async fn load_group(conn: &Connection, group: GroupId) -> anyhow::Result<LocalGroup> {
    let local = fetch_group(conn, group)
        .await
        .with_context(|| format!("could not fetch the events of group {group}"))?;
    let Some(local) = local else {
        // Ask the node why: it says `members_only` or `unknown_group`.
        conn.group_state(group).await?;
        return Err(ClientError::Protocol(format!(
            "it describes group {group} but sends none of its events"
        ))
        .into());
    };
    for error in local.rejected() {
        eprintln!("warning: {error}");
    }
    if !local.orphans().is_empty() {
        eprintln!(
            "warning: the node sent {} event(s) of this group without the earlier events they \
             follow on from; they are left out here",
            local.orphans().len()
        );
    }
    Ok(local)
}

/// A node's refusal of `event`, with advice. The reason is worked out again here with the
/// same rules, so the advice fits; if this computer's copy of the group allows the event,
/// the two have different events, and the advice is to try again.
pub(crate) fn explain_refusal(
    error: ClientError,
    local: &LocalGroup,
    event: &Event,
) -> anyhow::Error {
    let local_reason = local.group().check(event).err();
    // The node's words, with "you" and people's names for their keys.
    let error = match error {
        ClientError::Refused { code, message } => {
            let message = message.replace(&event.author().to_string(), "your key");
            ClientError::Refused {
                code,
                message: Names::of(local).plain(&message),
            }
        }
        other => other,
    };
    if local_reason.is_none() && error.code() == Some(ErrorCode::NotAllowed) {
        return Hinted::new(
            format!("{error}"),
            "this computer's copy of the group allows it, so the node knows of events this \
             computer has not seen yet; run the command again",
        )
        .into();
    }
    refusal(error, local_reason.as_ref(), local.id())
}

fn refusal(error: ClientError, reason: Option<&GroupError>, group: GroupId) -> anyhow::Error {
    let hint = match (error.code(), reason) {
        (Some(ErrorCode::NotAllowed | ErrorCode::MissingParents), Some(reason)) => {
            hint(reason, group)
        }
        (Some(ErrorCode::NotAllowed), None) => {
            format!("see the group's rules and who holds which role with `kith group show {group}`")
        }
        (Some(ErrorCode::MissingParents), None) => "try again in a moment".to_owned(),
        _ => return error.into(),
    };
    Hinted::new(format!("{error}"), hint).into()
}

/// What to do about a group rule that stops an event.
fn hint(reason: &GroupError, group: GroupId) -> String {
    let show = format!("`kith group show {group}`");
    match reason {
        GroupError::NotMember(_) => format!(
            "only members can do this. Ask a member for an invitation and join with `kith group \
             join {group} --via INVITATION_ID`, or ask them to propose admitting you"
        ),
        GroupError::AlreadyMember(_) => format!("you are already a member; see the group with {show}"),
        GroupError::NoPower { power: Power::Facilitate, .. } => format!(
            "ask a member who holds a role with that power to write it, or propose giving (or \
             renewing) such a role: `kith propose {group} … grant-role ROLE KEY --term 90d`. See \
             who holds which role with {show}"
        ),
        GroupError::NoPower { .. } => format!(
            "ask someone who holds a role with that power, or propose giving such a role to a \
             member: `kith propose {group} … grant-role ROLE KEY --term 90d`. See the roles with {show}"
        ),
        GroupError::NoInvitation | GroupError::InviteExpired | GroupError::InviteUsedUp => format!(
            "ask a member for a new invitation (`kith group invite {group}`) and give its id with --via"
        ),
        GroupError::StillOpen { .. } => "wait until it closes, then run this again".into(),
        GroupError::ProposalClosed(_) | GroupError::AlreadyDecided(_) => {
            format!("see how it was decided with {show} or `kith group log {group}`")
        }
        GroupError::CountedMismatch { .. } | GroupError::TallyMismatch { .. } => {
            "someone gave a stance in the meantime; run the command again".into()
        }
        GroupError::OptionNeeded | GroupError::NoSuchOption(_) => {
            format!("add --option N with the number of your choice; {show} lists the options")
        }
        GroupError::NotAPoll => "leave out --option".into(),
        GroupError::BeforeParent => "check this computer's date and time settings".into(),
        GroupError::MissingParents { .. } => "try again in a moment".into(),
        GroupError::TermOutOfRange { .. } => "choose a shorter --term".into(),
        _ => format!("see the group's rules and who holds which role with {show}"),
    }
}
