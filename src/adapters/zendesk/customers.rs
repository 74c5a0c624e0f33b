//! Whom a ticket's replays are looked up for, shared by the `zendesk.ticket` job and the sidebar app so
//! both follow the same identity rules and caps.
//!
//! Who is looked up: the requester's email, plus customer emails found in the ticket's latest public
//! comment; never an agent's or admin's address (users with those roles among the ticket's and the
//! comments' sideloaded users), never an address at `identity.exclude_domains`. The moment in question
//! (`around`) is the ticket's creation; the summary is asked for when `zendesk.auto_summary` is on.
//!
//! Fan-out: the requester plus at most `zendesk.max_comment_identities` of the comment's addresses (in
//! order of appearance; a comment pasting 2,000 addresses costs at most that many FullStory calls), the
//! rest named in the note as not looked up. Each account's lookups are also held to
//! `zendesk.account_lookups_per_minute` identities: past it the job is delayed, never refused, because
//! Zendesk does not resend a webhook we answered 2xx.

use std::collections::HashSet;

use super::api::{TicketWithUsers, User, ZendeskApi};
use crate::identity::{CustomerEmail, Identity, extract_emails};

/// The customers to look up: the requester first, then the comment's other addresses; staff and
/// excluded domains left out; each once.
pub fn customer_identities(
    requester: Option<&str>,
    comment: Option<&str>,
    staff: &HashSet<CustomerEmail>,
    exclude_domains: &[String],
) -> Vec<Identity> {
    let mut seen = HashSet::new();
    requester
        .into_iter()
        .chain(comment)
        .flat_map(|text| extract_emails(text, exclude_domains))
        .filter(|email| !staff.contains(email))
        .filter(|email| seen.insert(email.clone()))
        .map(Identity::Email)
        .collect()
}

/// Whom a ticket's replays are looked up for: what the webhook's job and the sidebar app share, so both
/// follow the same identity rules and caps.
pub struct Customers {
    /// The requester as a user, when the ticket has one.
    pub requester: Option<User>,
    /// The requester's email first, then the customers named in the latest public comment.
    pub identities: Vec<Identity>,
    /// The requester plus at most `zendesk.max_comment_identities` of the comment's addresses, within
    /// `identity.max_per_request`: the [`crate::lookup::LookupRequest::max_identities`] to use.
    pub max_identities: usize,
}

/// The requester's customer address: the requester's email (none for staff), else `fallback` (the
/// address the webhook's body named); `None` when neither is a customer address.
pub async fn requester_address(
    api: &ZendeskApi,
    ticket: &TicketWithUsers,
    fallback: Option<&str>,
) -> anyhow::Result<Option<CustomerEmail>> {
    let email = match requester(api, ticket).await? {
        Some(user) if user.is_staff() => None,
        Some(user) => user.email.or(fallback.map(str::to_owned)),
        None => fallback.map(str::to_owned),
    };
    Ok(email.and_then(|e| CustomerEmail::parse(&e).ok()))
}

/// The requester as a user, from the sideloads or (when Zendesk did not sideload them) by id.
pub async fn requester(api: &ZendeskApi, ticket: &TicketWithUsers) -> anyhow::Result<Option<User>> {
    if let Some(user) = ticket.requester() {
        return Ok(Some(user.clone()));
    }
    match ticket.ticket.requester_id {
        Some(id) => {
            Ok(Some(api.user(id).await.map_err(|e| {
                anyhow::Error::new(e).context("reading the requester")
            })?))
        }
        None => Ok(None),
    }
}

/// The customers of `ticket` (see the module docs): the requester (unless staff; `requester_hint` from
/// the webhook body when the user has no email) and the customer addresses of the latest public comment
/// (`comment_hint` from the webhook body, else read over the API), staff and excluded domains left out.
pub async fn customers(
    api: &ZendeskApi,
    config: &crate::config::Config,
    ticket: &TicketWithUsers,
    requester_hint: Option<&str>,
    comment_hint: Option<&str>,
) -> anyhow::Result<Customers> {
    let id = ticket.ticket.id;
    let mut staff: HashSet<CustomerEmail> = HashSet::new();
    let mut note_staff = |users: &[User]| {
        for user in users.iter().filter(|u| u.is_staff()) {
            if let Some(email) = user
                .email
                .as_deref()
                .and_then(|e| CustomerEmail::parse(e).ok())
            {
                staff.insert(email);
            }
        }
    };
    note_staff(&ticket.users);
    let comment = match comment_hint {
        Some(text) => Some(text.to_owned()),
        None => {
            let comments = api
                .comments(id)
                .await
                .map_err(|e| anyhow::Error::new(e).context("reading the comments"))?;
            note_staff(&comments.users);
            comments
                .latest_public()
                .and_then(|c| c.texts().next().map(str::to_owned))
        }
    };
    let requester = requester(api, ticket).await?;
    let requester_email = match &requester {
        Some(user) if user.is_staff() => None,
        Some(user) => user.email.clone().or(requester_hint.map(str::to_owned)),
        None => requester_hint.map(str::to_owned),
    };
    let exclude = &config.identity.exclude_domains.0;
    let identities = customer_identities(
        requester_email.as_deref(),
        comment.as_deref(),
        &staff,
        exclude,
    );
    let from_requester =
        customer_identities(requester_email.as_deref(), None, &staff, exclude).len();
    let max_identities = (from_requester + config.zendesk.max_comment_identities)
        .min(config.identity.max_per_request);
    Ok(Customers {
        requester,
        identities,
        max_identities,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn emails(identities: &[Identity]) -> Vec<&str> {
        identities
            .iter()
            .filter_map(|i| i.as_email().map(CustomerEmail::as_str))
            .collect()
    }

    #[test]
    fn the_requester_comes_first_then_other_customers_never_staff_or_our_domains() {
        let staff: HashSet<CustomerEmail> = [CustomerEmail::parse("agent@help.io").unwrap()].into();
        let identities = customer_identities(
            Some("Jane@Acme.com"),
            Some(
                "Hi, also bob@acme.com and jane@acme.com had it. cc agent@help.io, \
                 support@ourco.com <a href=\"mailto:eve@beta.io\">Eve</a>",
            ),
            &staff,
            &["ourco.com".to_owned()],
        );
        assert_eq!(
            emails(&identities),
            ["jane@acme.com", "bob@acme.com", "eve@beta.io"]
        );
    }

    #[test]
    fn a_missing_or_invalid_requester_leaves_the_comment_addresses() {
        let identities = customer_identities(
            Some("not an address"),
            Some("ask bob@acme.com"),
            &HashSet::new(),
            &[],
        );
        assert_eq!(emails(&identities), ["bob@acme.com"]);
        assert!(customer_identities(None, None, &HashSet::new(), &[]).is_empty());
    }
}
