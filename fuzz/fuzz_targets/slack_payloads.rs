//! Slack's form bodies: a slash command's form, an interactivity form's `payload` (shortcuts, button
//! clicks) and the button values inside it, as arbitrary bytes. A typed refusal (400 naming the field) or
//! a value, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replaydesk::adapters::slack::{
    wire::{self, Interaction, SlashCommand},
    render::{ForgetValue, ShareValue, SummarizeValue},
};

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = wire::form_to_json(data) {
        let _ = wire::decode::<SlashCommand>(form, "command");
    }
    let Ok(payload) = wire::interaction_form(data) else {
        return;
    };
    if let Ok(Interaction::Buttons(click)) = wire::interaction(payload) {
        for action in &click.actions {
            let Some(value) = action.value.as_deref() else {
                continue;
            };
            let _ = serde_json::from_str::<SummarizeValue>(value);
            let _ = serde_json::from_str::<ShareValue>(value);
            let _ = serde_json::from_str::<ForgetValue>(value);
        }
    }
});
