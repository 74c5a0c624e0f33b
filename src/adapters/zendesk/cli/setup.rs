//! `setup --url https://host`: prints the webhook and the two triggers (ticket created; requester
//! replied publicly), plus the erasure trigger (the ticket has `privacy.zendesk_erasure_tag`) when
//! that key is set, as the JSON the Zendesk API takes, with the recommended body template. With
//! `--apply` it creates them (`POST /api/v2/webhooks`, then `POST /api/v2/triggers` for each, pointing at
//! the new webhook), reads the webhook's signing secret (`GET /api/v2/webhooks/{id}/signing_secret`)
//! and prints it for `zendesk.webhook_secret`. Needs an admin's API credential.

use serde_json::{Value, json};

use super::{SetupArgs, api, pretty, print_setting, public_url, zendesk_failure};
use crate::{
    adapters::zendesk::wire::{ERASURE_TEMPLATE, RECOMMENDED_TEMPLATE},
    config::Config,
    console::Failure,
    outbound::Upstreams,
};

pub(super) async fn run(config: Config, args: SetupArgs) -> Result<(), Failure> {
    let url = public_url(&config, args.url)?
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let endpoint = format!("{}/zendesk/webhook", url.trim_end_matches('/'));
    let webhook = webhook_json(&endpoint);
    let erasure_tag = config
        .privacy
        .zendesk_erasure_tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if !args.apply {
        println!(
            "# 1. The webhook (POST /api/v2/webhooks, or Admin Center > Apps and integrations > Webhooks):"
        );
        println!("{}", pretty(&webhook));
        println!();
        println!(
            "# 2. The triggers (POST /api/v2/triggers), with WEBHOOK_ID replaced by the webhook's id:"
        );
        for trigger in triggers_json("WEBHOOK_ID", erasure_tag) {
            println!("{}", pretty(&trigger));
        }
        println!();
        println!(
            "# The body the lookup triggers send (in Admin Center: the action \"Notify by > Active webhook\"):"
        );
        println!("{RECOMMENDED_TEMPLATE}");
        if let Some(tag) = erasure_tag {
            println!();
            println!("# The body the erasure trigger sends (tags include {tag}):");
            println!("{ERASURE_TEMPLATE}");
        }
        println!();
        println!("# 3. Put the webhook's signing secret in zendesk.webhook_secret");
        println!("#    (Admin Center > Webhooks > replaydesk > Reveal secret).");
        println!("# Or run again with --apply to create all of this and print the secret.");
        println!(
            "# The ticket sidebar app: `replaydesk zendesk app --url {url}` writes it (upload it as a private app)."
        );
        return Ok(());
    }
    let api = api(&config, Upstreams::default())?;
    let webhook_id = api
        .create_webhook(&webhook)
        .await
        .map_err(zendesk_failure("creating the webhook"))?;
    println!("created webhook {webhook_id} -> {endpoint}");
    for trigger in triggers_json(&webhook_id, erasure_tag) {
        let title = trigger["trigger"]["title"].as_str().unwrap_or("trigger");
        let id = api.create_trigger(&trigger).await.map_err(|e| {
            Failure::failed(format!(
                "creating the trigger \"{title}\": {e} (webhook {webhook_id} exists already)"
            ))
        })?;
        println!("created trigger {id}: {title}");
    }
    let secret = api
        .webhook_signing_secret(&webhook_id)
        .await
        .map_err(zendesk_failure("reading the webhook's signing secret"))?;
    print_setting(
        "this signing secret",
        &format!("webhook_secret = \"{secret}\""),
    );
    println!("(or REPLAYDESK_ZENDESK__WEBHOOK_SECRET={secret})");
    println!();
    println!(
        "The ticket sidebar app: `replaydesk zendesk app --url {url}` writes it (upload it as a private app)."
    );
    Ok(())
}

/// The webhook the triggers call.
pub fn webhook_json(endpoint: &str) -> Value {
    json!({
        "webhook": {
            "name": "replaydesk",
            "description": "Session replays for new tickets and requester replies (replaydesk)",
            "status": "active",
            "endpoint": endpoint,
            "http_method": "POST",
            "request_format": "json",
            "subscriptions": ["conditional_ticket_events"],
        }
    })
}

/// The triggers: a ticket is created; the requester adds a public comment; and, when
/// `privacy.zendesk_erasure_tag` is set, a ticket is updated with that tag ([`erasure_trigger_json`]).
pub fn triggers_json(webhook_id: &str, erasure_tag: Option<&str>) -> Vec<Value> {
    let mut triggers = lookup_triggers_json(webhook_id);
    triggers.extend(erasure_tag.map(|tag| erasure_trigger_json(webhook_id, tag)));
    triggers
}

/// The erasure trigger: an update leaves the ticket with the erasure tag (an agent added it) → the
/// webhook, with the ticket's tags in the body ([`ERASURE_TEMPLATE`]). It fires again on later updates
/// of a tagged ticket; replaydesk erases once per ticket, so those deliveries change nothing.
pub fn erasure_trigger_json(webhook_id: &str, tag: &str) -> Value {
    json!({
        "trigger": {
            "title": "replaydesk: erase the requester",
            "description": "Erases the requester from FullStory, Heap and replaydesk; the receipt comes as an internal note.",
            "active": true,
            "conditions": {
                "all": [
                    { "field": "update_type", "operator": "is", "value": "Change" },
                    { "field": "current_tags", "operator": "includes", "value": tag },
                ],
                "any": [],
            },
            "actions": [{
                "field": "notification_webhook",
                "value": [webhook_id, ERASURE_TEMPLATE],
            }],
        }
    })
}

/// The two lookup triggers: a ticket is created; the requester adds a public comment.
fn lookup_triggers_json(webhook_id: &str) -> Vec<Value> {
    let action = json!([{
        "field": "notification_webhook",
        "value": [webhook_id, RECOMMENDED_TEMPLATE],
    }]);
    vec![
        json!({
            "trigger": {
                "title": "replaydesk: ticket created",
                "description": "Adds an internal note with the requester's session replays.",
                "active": true,
                "conditions": {
                    "all": [{ "field": "update_type", "operator": "is", "value": "Create" }],
                    "any": [],
                },
                "actions": action,
            }
        }),
        json!({
            "trigger": {
                "title": "replaydesk: requester replied",
                "description": "Adds the requester's new session replays (never one already on the ticket).",
                "active": true,
                "conditions": {
                    "all": [
                        { "field": "update_type", "operator": "is", "value": "Change" },
                        { "field": "role", "operator": "is", "value": "end_user" },
                        { "field": "comment_is_public", "operator": "is", "value": "true" },
                    ],
                    "any": [],
                },
                "actions": action,
            }
        }),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_json_is_what_the_zendesk_api_takes() {
        insta::assert_snapshot!(pretty(&webhook_json(
            "https://rd.example.com/zendesk/webhook"
        )));
        let triggers: Vec<Value> = triggers_json("01HWEBHOOK", None);
        insta::assert_snapshot!(pretty(&Value::Array(triggers)));
    }

    #[test]
    fn with_an_erasure_tag_setup_adds_the_erasure_trigger() {
        let triggers = triggers_json("01HWEBHOOK", Some("gdpr_erase"));
        assert_eq!(triggers.len(), 3);
        assert_eq!(
            triggers[2],
            erasure_trigger_json("01HWEBHOOK", "gdpr_erase")
        );
        insta::assert_snapshot!(pretty(&triggers[2]));
    }
}
