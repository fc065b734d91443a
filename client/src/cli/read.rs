//! `kith read`: earlier posts, oldest first, then (with `--follow`) new ones as they come.

use kith_client::{ClientError, Connection, KeyStore, ProfileName, SubscriptionItem};
use kith_protocol::frame::Filter;
use kith_protocol::view::EventView;
use kith_protocol::{Event, GroupId, Kind, PublicKey};

use super::output::{human_post, print_line};

/// What to read and how to show it.
#[derive(Debug)]
pub(crate) struct ReadRequest {
    pub(crate) group: Option<GroupId>,
    pub(crate) author: Option<PublicKey>,
    pub(crate) limit: Option<u32>,
    pub(crate) follow: bool,
    pub(crate) json: bool,
}

impl ReadRequest {
    fn filter(&self) -> Filter {
        Filter {
            kinds: Some(vec![Kind::POST]),
            groups: self.group.map(|g| vec![g]),
            authors: self.author.map(|a| vec![a]),
            limit: self.limit,
            ..Filter::default()
        }
    }
}

/// Prints posts as [`ReadRequest`] says.
pub(crate) async fn read(
    address: &str,
    profile: &ProfileName,
    request: ReadRequest,
) -> anyhow::Result<()> {
    // Reading needs no identity; if there is one, the reader's own posts say "you", and
    // logging in with it shows the private groups they are a member of.
    let key = KeyStore::from_env()
        .and_then(|store| store.load(profile))
        .ok();
    let printer = Printer {
        me: key.as_ref().map(|key| key.public_key()),
        json: request.json,
        show_group: request.group.is_none(),
    };
    let conn = Connection::connect(address).await?;
    if let Some(key) = &key {
        // Not registered here: reading public posts needs no login.
        let _ = conn.login(key, None).await;
    }
    let mut sub = conn.subscribe(request.filter()).await?;
    let mut earlier: Option<Vec<Event>> = Some(Vec::new());
    // One Ctrl-C listener for the whole loop, so that a Ctrl-C arriving while an event is
    // being printed is not missed.
    let interrupted = interrupted();
    tokio::pin!(interrupted);
    let result = loop {
        let item = if request.follow {
            tokio::select! {
                item = sub.next() => item,
                () = &mut interrupted => break Ok(()),
            }
        } else {
            sub.next().await
        };
        match item {
            Some(SubscriptionItem::Event(event)) => match &mut earlier {
                Some(list) => list.push(event),
                None => printer.print(&event)?,
            },
            Some(SubscriptionItem::StoredDone) => {
                printer.print_earlier(earlier.take().unwrap_or_default())?;
                if !request.follow {
                    break Ok(());
                }
                if !request.json {
                    eprintln!("-- waiting for new posts; press Ctrl-C to stop --");
                }
            }
            Some(SubscriptionItem::Rejected(error)) => eprintln!("warning: {error}"),
            Some(SubscriptionItem::Closed { code, message }) => {
                break Err(ClientError::Refused { code, message })
            }
            Some(SubscriptionItem::Disconnected { reason }) => {
                break Err(ClientError::Closed { reason })
            }
            None => break Ok(()),
        }
    };
    if let Some(list) = earlier {
        printer.print_earlier(list)?;
    }
    sub.unsubscribe().await;
    conn.close().await;
    Ok(result?)
}

/// Resolves when Ctrl-C is pressed; never, if this system cannot tell us.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct Printer {
    me: Option<PublicKey>,
    json: bool,
    show_group: bool,
}

impl Printer {
    fn print(&self, event: &Event) -> anyhow::Result<()> {
        if self.json {
            print_line(&serde_json::to_string(&EventView::from(event))?)
        } else {
            print_line(&format!(
                "{}\n",
                human_post(event, self.me.as_ref(), self.show_group)
            ))
        }
    }

    /// The posts from before subscribing, oldest first.
    fn print_earlier(&self, mut events: Vec<Event>) -> anyhow::Result<()> {
        if events.is_empty() && !self.json {
            return print_line(&"No posts yet.");
        }
        events.sort_by_key(|e| (e.created_at(), e.id()));
        events.iter().try_for_each(|e| self.print(e))
    }
}
