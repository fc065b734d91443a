//! [`Subscription`]: the events a node sends for one filter, stored ones first.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use kith_protocol::frame::ErrorCode;
use kith_protocol::Event;
use tokio::sync::{mpsc, oneshot};

use crate::connection::Shared;
use crate::error::ClientError;

/// One thing a subscription yields.
///
/// The order is: the stored matches as [`SubscriptionItem::Event`]s, one
/// [`SubscriptionItem::StoredDone`], then live matches as they arrive, until the
/// subscription ends with [`SubscriptionItem::Closed`] or
/// [`SubscriptionItem::Disconnected`] (after which [`Subscription::next`] returns `None`).
// Nearly every item is an event, so boxing it would only add an allocation per item.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionItem {
    /// An event that matches the filter and passed this program's own checks.
    Event(Event),
    /// Every stored match has been sent; what follows is live.
    StoredDone,
    /// The node sent something for this subscription that failed this program's checks
    /// (a forged or altered event, or one that does not match the filter). It was dropped;
    /// the subscription goes on.
    Rejected(ClientError),
    /// The subscription has ended: the node closed it (or refused to open it), or this
    /// program stopped it because events arrived faster than they were read (code
    /// `slow_reader`). Nothing follows.
    Closed {
        /// Why, as a stable code.
        code: ErrorCode,
        /// Why, in plain words.
        message: String,
    },
    /// The connection to the node ended, and with it the subscription. Nothing follows.
    Disconnected {
        /// Why, as far as this program knows.
        reason: String,
    },
}

/// The receiving end of a subscription opened with
/// [`Connection::subscribe`](crate::Connection::subscribe).
///
/// Read it with [`Subscription::next`] or as a [`Stream`]. Read it steadily: if too many
/// events pile up unread (more than
/// [`ConnectOptions::subscription_buffer`](crate::ConnectOptions::subscription_buffer)),
/// it is stopped with [`SubscriptionItem::Closed`] and code `slow_reader`, so that one idle
/// subscription never holds up the rest of the connection. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    id: String,
    items: mpsc::Receiver<SubscriptionItem>,
    end: Option<oneshot::Receiver<SubscriptionItem>>,
    done: bool,
    shared: Arc<Shared>,
}

impl Subscription {
    pub(crate) fn new(
        id: String,
        items: mpsc::Receiver<SubscriptionItem>,
        end: oneshot::Receiver<SubscriptionItem>,
        shared: Arc<Shared>,
    ) -> Self {
        Subscription {
            id,
            items,
            end: Some(end),
            done: false,
            shared,
        }
    }

    /// The subscription id on the wire.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next item, waiting for it if need be; `None` once the subscription has ended
    /// and its last item ([`SubscriptionItem::Closed`] or
    /// [`SubscriptionItem::Disconnected`]) has been returned.
    pub async fn next(&mut self) -> Option<SubscriptionItem> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    /// Stops the subscription: tells the node, and drops whatever was not read yet.
    pub async fn unsubscribe(mut self) {
        self.done = true;
        self.shared.unsubscribe(&self.id).await;
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<SubscriptionItem>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.items.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Ready(None) => Poll::Ready(Some(self.finish())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The last item, once the router has let go of the sending side.
    fn finish(&mut self) -> SubscriptionItem {
        self.done = true;
        self.end
            .take()
            .and_then(|mut end| end.try_recv().ok())
            .unwrap_or_else(|| SubscriptionItem::Disconnected {
                reason: "the connection ended".into(),
            })
    }
}

impl Stream for Subscription {
    type Item = SubscriptionItem;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubscriptionItem>> {
        self.get_mut().poll_item(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.done {
            self.shared.forget_subscription(&self.id);
        }
    }
}
