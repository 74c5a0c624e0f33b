//! What the sidebar reads from Zendesk, each kept briefly and read once however many ask at the same
//! time: the ticket and its customers ([`TICKET_TTL`]), and an agent's access ([`AGENT_TTL`]).
//!
//! Why: every sidebar call needs the ticket (and the sessions call its comments), and a page, a
//! refresh button or a script can ask many times a second. Zendesk counts each read against the
//! account's API limit, which the webhook's notes share; a flood of sidebar calls must not spend it.
//! With these caches (moka, concurrent loads of one key coalesced) and the sidebar's allowances
//! ([`super::Sidebar`]), one open ticket costs a handful of Zendesk reads a minute, whatever the page
//! does. Short lives keep what the agent sees fresh (a new comment shows within seconds) and an
//! agent's changed rights apply within a minute.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;

use super::super::{
    api::{Agent, TicketWithUsers, ZendeskApi, ZendeskError},
    customers::{self, Customers},
};
use super::access;

/// How long a ticket (and its customers, read from its comments) is kept.
pub const TICKET_TTL: Duration = Duration::from_secs(5);
/// How long an agent's user record and groups are kept.
pub const AGENT_TTL: Duration = Duration::from_secs(60);
/// Tickets and agents kept at once (a busy desk's open sidebars).
const CAPACITY: u64 = 10_000;

/// An agent's access: their user record and, when it matters, their groups.
#[derive(Debug)]
pub struct Access {
    pub agent: Agent,
    pub groups: Vec<u64>,
}

/// The sidebar's Zendesk reads, cached.
pub struct Reads {
    api: Arc<ZendeskApi>,
    tickets: Cache<u64, Arc<TicketWithUsers>>,
    customers: Cache<u64, Arc<Customers>>,
    agents: Cache<u64, Arc<Access>>,
}

fn cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> Cache<u64, V> {
    Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(ttl)
        .build()
}

/// A coalesced load's error, back as the client's own (it is `Clone`).
fn own(error: Arc<ZendeskError>) -> ZendeskError {
    (*error).clone()
}

impl Reads {
    pub fn new(api: Arc<ZendeskApi>) -> Self {
        Self {
            api,
            tickets: cache(TICKET_TTL),
            customers: cache(TICKET_TTL),
            agents: cache(AGENT_TTL),
        }
    }

    pub fn api(&self) -> &Arc<ZendeskApi> {
        &self.api
    }

    /// The ticket with its users (`GET /api/v2/tickets/{id}.json?include=users`).
    pub async fn ticket(&self, id: u64) -> Result<Arc<TicketWithUsers>, ZendeskError> {
        self.tickets
            .try_get_with(id, async { self.api.ticket(id).await.map(Arc::new) })
            .await
            .map_err(own)
    }

    /// Whom the ticket's replays are for ([`customers::customers`]: the requester and the latest
    /// public comment's customers), read with `ticket`.
    pub async fn customers(
        &self,
        config: &crate::config::Config,
        ticket: &TicketWithUsers,
    ) -> anyhow::Result<Arc<Customers>> {
        self.customers
            .try_get_with(ticket.ticket.id, async {
                customers::customers(&self.api, config, ticket, None, None)
                    .await
                    .map(Arc::new)
            })
            .await
            .map_err(|error| anyhow::anyhow!("{error:#}"))
    }

    /// The agent's user record, and their groups when their access depends on them.
    pub async fn access(&self, agent: u64) -> Result<Arc<Access>, ZendeskError> {
        self.agents
            .try_get_with(agent, async {
                let record = self.api.agent(agent).await?;
                let groups = if access::needs_groups(&record) {
                    self.api.group_ids(agent).await?
                } else {
                    Vec::new()
                };
                Ok(Arc::new(Access {
                    agent: record,
                    groups,
                }))
            })
            .await
            .map_err(own)
    }
}
