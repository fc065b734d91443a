//! `kith register` and `kith post`: the commands that log in to a node.

use std::io::Read as _;

use anyhow::Context as _;
use kith_client::{Connection, KeyStore, ProfileName};
use kith_protocol::kind::PostBody;
use kith_protocol::validate::validate_decoded;
use kith_protocol::{EventBuilder, GroupId, Kind};
use serde_json::json;

use super::id;
use super::output::print_line;
use super::report::Hinted;

/// `kith register`: logs in with an invite code, which registers the key on the node.
pub(crate) async fn register(
    address: &str,
    profile: &ProfileName,
    invite: &str,
    json: bool,
) -> anyhow::Result<()> {
    let key = id::load(&KeyStore::from_env()?, profile)?;
    let conn = Connection::connect(address).await?;
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

/// `kith post`: signs a post and publishes it.
pub(crate) async fn post(
    address: &str,
    profile: &ProfileName,
    group: Option<GroupId>,
    words: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let key = id::load(&KeyStore::from_env()?, profile)?;
    let text = message_text(words)?;
    let conn = Connection::connect(address).await?;
    let now = kith_client::now();
    let body = PostBody { text }.to_bytes();
    let mut builder = EventBuilder::new(Kind::POST, now, body);
    if let Some(group) = group {
        builder = builder.group(group);
    }
    let event = builder.sign(&key).context("could not sign the post")?;
    // Check against the node's own limits first, to explain a refusal in our words.
    if let Err(e) = validate_decoded(event.clone(), now, conn.limits()) {
        conn.close().await;
        return Err(Hinted::new(
            format!("this post cannot be sent: {e}"),
            "change the message and try again",
        )
        .into());
    }
    let result = async {
        conn.login(&key, None).await?;
        conn.publish(&event).await
    }
    .await;
    conn.close().await;
    let outcome = result?;
    if json {
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
