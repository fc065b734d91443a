//! `kith register` and `kith post`: the commands that log in to a node.

use std::io::Read as _;

use anyhow::Context as _;
use kith_client::{Connection, KeyStore, ProfileName, PublishOutcome};
use kith_protocol::kind::PostBody;
use kith_protocol::validate::validate_decoded;
use kith_protocol::{EventBuilder, GroupId, Kind};
use serde_json::json;

use super::id;
use super::output::print_line;
use super::report::Hinted;
use super::session::{explain_refusal, load_group};

/// `kith register`: logs in with an invite code, which registers the key on the node.
/// Makes an identity first if the profile has none.
pub(crate) async fn register(
    address: &str,
    profile: &ProfileName,
    invite: &str,
    json: bool,
) -> anyhow::Result<()> {
    let store = KeyStore::from_env()?;
    // Connect first, so that a mistyped address does not leave a new key behind.
    let conn = Connection::connect(address).await?;
    let key = match id::load_or_create(&store, profile) {
        Ok(key) => key,
        Err(e) => {
            conn.close().await;
            return Err(e);
        }
    };
    let result = conn.login(&key, Some(invite.trim())).await;
    conn.close().await;
    result?;
    let public = key.public_key();
    if json {
        print_line(&json!({
            "registered": true,
            "public_key": public.to_string(),
            "node": conn.url(),
        }))
    } else {
        print_line(&format!(
            "Registered {public} on {address}.\nYou can now post with: kith post \"your message\""
        ))
    }
}

/// What `kith post` was asked to do.
#[derive(Debug)]
pub(crate) struct PostRequest {
    /// Post in this group.
    pub(crate) group: Option<GroupId>,
    /// Join the node with this invite code while logging in.
    pub(crate) invite: Option<String>,
    /// The message, as words (or `-` for the input).
    pub(crate) words: Vec<String>,
    /// Print JSON.
    pub(crate) json: bool,
}

/// `kith post`: signs a post and publishes it. Makes an identity first if the profile has
/// none; with an invite, the login also registers the key on the node.
pub(crate) async fn post(
    address: &str,
    profile: &ProfileName,
    request: PostRequest,
) -> anyhow::Result<()> {
    let store = KeyStore::from_env()?;
    let text = message_text(&request.words)?;
    // Connect first, so that a mistyped address does not leave a new key behind.
    let conn = Connection::connect(address).await?;
    let result = sign_and_publish(&conn, &store, profile, &request, text).await;
    conn.close().await;
    let outcome = result?;
    if request.json {
        print_line(&json!({
            "id": outcome.event_id.to_hex(),
            "duplicate": outcome.duplicate,
        }))
    } else if outcome.duplicate {
        print_line(&format!(
            "Already posted (the node had it): {}",
            outcome.event_id
        ))
    } else {
        print_line(&format!("Posted: {}", outcome.event_id))
    }
}

async fn sign_and_publish(
    conn: &Connection,
    store: &KeyStore,
    profile: &ProfileName,
    request: &PostRequest,
    text: String,
) -> anyhow::Result<PublishOutcome> {
    let key = id::load_or_create(store, profile)?;
    let now = kith_client::now();
    let body = PostBody { text }.to_bytes();
    let mut builder = EventBuilder::new(Kind::POST, now, body.clone());
    if let Some(group) = request.group {
        builder = builder.group(group);
    }
    let event = builder.sign(&key).context("could not sign the post")?;
    // Check against the node's own limits first, to explain a refusal in our words.
    if let Err(e) = validate_decoded(event.clone(), now, conn.limits()) {
        return Err(Hinted::new(
            format!("this post cannot be sent: {e}"),
            "change the message and try again",
        )
        .into());
    }
    conn.login(&key, request.invite.as_deref().map(str::trim))
        .await?;
    let Some(group) = request.group else {
        return Ok(conn.publish(&event).await?);
    };
    // A post in a group follows on from the group's latest events, which decide whether
    // its author may post there.
    let local = load_group(conn, group).await?;
    let parents = local.parents(conn.limits().max_parents);
    let event = EventBuilder::new(Kind::POST, local.time_after(&parents, now), body)
        .group(group)
        .parents(parents)
        .sign(&key)
        .context("could not sign the post")?;
    conn.publish(&event)
        .await
        .map_err(|error| explain_refusal(error, &local, &event))
}

/// The message: the words joined by spaces, or the input when the only word is `-`.
fn message_text(words: &[String]) -> anyhow::Result<String> {
    let text = if words == ["-"] {
        let mut text = String::new();
        std::io::stdin()
            .take(1 << 20)
            .read_to_string(&mut text)
            .context("could not read the message from the input")?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        words.join(" ")
    };
    if text.trim().is_empty() {
        return Err(Hinted::new("the message is empty", "write something to post").into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_joined() {
        let words = ["Soup", "at", "6"].map(String::from);
        assert_eq!(message_text(&words).unwrap(), "Soup at 6");
        assert!(message_text(&[" ".into()]).is_err());
    }
}
