//! Which tickets an agent may see, decided as Zendesk decides, before the sidebar shows anything of one.
//!
//! replaydesk reads tickets with its own (admin) credentials, so Zendesk's rules would not apply to
//! what the sidebar shows unless replaydesk applies them itself. The agent is Zendesk's word (the `sub`
//! of the JWT Zendesk signed the load with, [`agent_of`]); never the page's. What they may see comes
//! from their user record (Users API, PLATFORMS.md §7.5): `role` and `ticket_restriction`, and for
//! `"groups"` their group memberships. Against the ticket's `group_id`, `organization_id`,
//! `assignee_id` and `requester_id`:
//!
//! | agent | sees a ticket when |
//! |---|---|
//! | `admin` | always |
//! | `agent`, `ticket_restriction: null` | always |
//! | `"groups"` | its group is one of theirs, or it is assigned to them |
//! | `"organization"` | its organisation is theirs, or it is assigned to them |
//! | `"assigned"` | it is assigned to them |
//! | `"requested"` | they requested it |
//! | anyone else (`end-user`, a suspended or inactive user, an unknown role or restriction, a user record without `ticket_restriction`) | never |
//!
//! Unknown is refused: a new kind of restriction Zendesk adds must not open every ticket. Light agents
//! and custom roles carry their ticket access in the same `ticket_restriction`.

use super::super::api::{Agent, Ticket};

/// Why an agent may not see a ticket (the audit's detail; the agent is told only that they cannot).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("user {0} is not an agent or admin")]
    NotStaff(u64),
    #[error("user {0} is suspended or inactive")]
    Inactive(u64),
    #[error("agent {agent} may see only {restriction} tickets, and ticket {ticket} is not one")]
    Restricted {
        agent: u64,
        ticket: u64,
        restriction: String,
    },
    #[error("agent {0}'s ticket access is not one replaydesk knows: refused")]
    Unknown(u64),
}

/// The agent's Zendesk user id from the JWT's `sub`: the user's API URL on the configured account
/// (`https://acme.zendesk.com/api/v2/users/12345.json`, as Zendesk writes it) or the bare id (a number,
/// or digits as text). Anything else, another account's URL included, is `None`.
pub fn agent_of(sub: Option<&serde_json::Value>, base_url: &str) -> Option<u64> {
    let digits = |text: &str| {
        (!text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u64>().ok())
            .flatten()
            .filter(|id| *id > 0)
    };
    match sub? {
        serde_json::Value::Number(n) => n.as_u64().filter(|id| *id > 0),
        serde_json::Value::String(text) => {
            let prefix = format!("{}/api/v2/users/", base_url.trim_end_matches('/'));
            match text.strip_prefix(&prefix) {
                Some(rest) => digits(rest.strip_suffix(".json")?),
                None => digits(text),
            }
        }
        _ => None,
    }
}

/// Whether `agent` (in `groups`) may see `ticket`: see the module docs.
pub fn may_see(agent: &Agent, groups: &[u64], ticket: &Ticket) -> Result<(), Denied> {
    if agent.suspended || !agent.active {
        return Err(Denied::Inactive(agent.id));
    }
    match agent.role.as_deref() {
        Some("admin") => return Ok(()),
        Some("agent") => {}
        _ => return Err(Denied::NotStaff(agent.id)),
    }
    let mine = |id: Option<u64>| id == Some(agent.id);
    let restriction = match &agent.ticket_restriction {
        None => return Err(Denied::Unknown(agent.id)),
        Some(None) => return Ok(()),
        Some(Some(restriction)) => restriction.as_str(),
    };
    let sees = match restriction {
        "groups" => {
            ticket.group_id.is_some_and(|g| groups.contains(&g)) || mine(ticket.assignee_id)
        }
        "organization" => {
            (ticket.organization_id.is_some() && ticket.organization_id == agent.organization_id)
                || mine(ticket.assignee_id)
        }
        "assigned" => mine(ticket.assignee_id),
        "requested" => mine(ticket.requester_id),
        _ => return Err(Denied::Unknown(agent.id)),
    };
    if sees {
        Ok(())
    } else {
        Err(Denied::Restricted {
            agent: agent.id,
            ticket: ticket.id,
            restriction: restriction.chars().take(20).collect(),
        })
    }
}

/// Whether the agent's group memberships matter for their access (only `"groups"` needs them, so only
/// then are they read).
pub fn needs_groups(agent: &Agent) -> bool {
    agent.role.as_deref() == Some("agent")
        && matches!(&agent.ticket_restriction, Some(Some(r)) if r == "groups")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An agent record as Zendesk sends it; `restriction` `"absent"` leaves the field out.
    fn agent(role: &str, restriction: serde_json::Value) -> Agent {
        let mut user = json!({"id": 7, "role": role, "organization_id": 70});
        if restriction != json!("absent") {
            user["ticket_restriction"] = restriction;
        }
        serde_json::from_value(user).unwrap()
    }

    fn ticket(
        group: Option<u64>,
        org: Option<u64>,
        assignee: Option<u64>,
        requester: u64,
    ) -> Ticket {
        Ticket {
            id: 100,
            group_id: group,
            organization_id: org,
            assignee_id: assignee,
            requester_id: Some(requester),
            ..Ticket::default()
        }
    }

    #[test]
    fn admins_and_unrestricted_agents_see_every_ticket() {
        let anywhere = ticket(Some(1), Some(2), Some(3), 4);
        assert_eq!(
            may_see(&agent("admin", json!("absent")), &[], &anywhere),
            Ok(())
        );
        assert_eq!(
            may_see(&agent("agent", json!(null)), &[], &anywhere),
            Ok(())
        );
    }

    #[test]
    fn each_restriction_opens_only_its_own_tickets() {
        let groups = agent("agent", json!("groups"));
        assert_eq!(
            may_see(&groups, &[5, 6], &ticket(Some(6), None, None, 1)),
            Ok(())
        );
        assert_eq!(
            may_see(&groups, &[5, 6], &ticket(Some(9), None, Some(7), 1)),
            Ok(())
        );
        assert!(may_see(&groups, &[5, 6], &ticket(Some(9), None, None, 1)).is_err());
        assert!(may_see(&groups, &[5, 6], &ticket(None, None, None, 1)).is_err());

        let org = agent("agent", json!("organization"));
        assert_eq!(may_see(&org, &[], &ticket(None, Some(70), None, 1)), Ok(()));
        assert!(may_see(&org, &[], &ticket(None, Some(71), None, 1)).is_err());
        assert!(may_see(&org, &[], &ticket(None, None, None, 1)).is_err());

        let assigned = agent("agent", json!("assigned"));
        assert_eq!(
            may_see(&assigned, &[], &ticket(None, None, Some(7), 1)),
            Ok(())
        );
        assert!(may_see(&assigned, &[], &ticket(Some(1), Some(70), Some(8), 7)).is_err());

        let requested = agent("agent", json!("requested"));
        assert_eq!(
            may_see(&requested, &[], &ticket(None, None, None, 7)),
            Ok(())
        );
        assert!(may_see(&requested, &[], &ticket(None, None, Some(7), 1)).is_err());
    }

    #[test]
    fn end_users_the_inactive_and_the_unknown_are_refused() {
        let any = ticket(Some(1), Some(70), Some(7), 7);
        assert_eq!(
            may_see(&agent("end-user", json!(null)), &[], &any),
            Err(Denied::NotStaff(7))
        );
        assert_eq!(
            may_see(&agent("agent", json!("absent")), &[], &any),
            Err(Denied::Unknown(7))
        );
        assert_eq!(
            may_see(&agent("agent", json!("everything")), &[], &any),
            Err(Denied::Unknown(7))
        );
        let mut suspended = agent("admin", json!(null));
        suspended.suspended = true;
        assert_eq!(may_see(&suspended, &[], &any), Err(Denied::Inactive(7)));
    }

    #[test]
    fn the_agent_is_the_jwt_subject_on_this_account_only() {
        let base = "https://acme.zendesk.com";
        let of = |v: serde_json::Value| agent_of(Some(&v), base);
        assert_eq!(
            of(json!("https://acme.zendesk.com/api/v2/users/12345.json")),
            Some(12345)
        );
        assert_eq!(of(json!("12345")), Some(12345));
        assert_eq!(of(json!(12345)), Some(12345));
        for bad in [
            json!("https://evil.zendesk.com/api/v2/users/12345.json"),
            json!("https://acme.zendesk.com/api/v2/users/12345"),
            json!("https://acme.zendesk.com/api/v2/users/../1.json"),
            json!("\u{1b}[2J12345"),
            json!("12345\n"),
            json!(""),
            json!(0),
            json!(-3),
            json!(1.5),
            json!("99999999999999999999999"),
            json!(null),
            json!({"id": 1}),
        ] {
            assert_eq!(of(bad.clone()), None, "{bad}");
        }
        assert_eq!(agent_of(None, base), None);
    }
}
