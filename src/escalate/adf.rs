//! A [`Report`] as an Atlassian Document Format document: what Jira Cloud's REST v3 takes as an
//! issue's description (`{"type":"doc","version":1,"content":[…]}`).
//!
//! Only nodes and marks of ADF's published schema are used (npm `@atlaskit/adf-schema`,
//! `json-schema/v1/full.json`, which `tests/contracts/run` validates replaydesk's documents against):
//! `paragraph`, `heading` (level 3), `bulletList` → `listItem` → `paragraph`, `text` with the `strong`
//! and `link` marks. A `text` node is never empty (the schema's `minLength: 1`): empty parts are left
//! out.

use serde_json::{Value, json};

use super::text::{Block, Inline, Report};

fn inline(part: &Inline) -> Option<Value> {
    let node = match part {
        Inline::Text(text) if !text.is_empty() => json!({"type": "text", "text": text}),
        Inline::Strong(text) if !text.is_empty() => {
            json!({"type": "text", "text": text, "marks": [{"type": "strong"}]})
        }
        Inline::Link { text, url } if !text.is_empty() => json!({
            "type": "text",
            "text": text,
            "marks": [{"type": "link", "attrs": {"href": url}}],
        }),
        _ => return None,
    };
    Some(node)
}

fn paragraph(parts: &[Inline]) -> Value {
    let content: Vec<Value> = parts.iter().filter_map(inline).collect();
    json!({"type": "paragraph", "content": content})
}

/// The report's description as an ADF document.
pub fn document(report: &Report) -> Value {
    let content: Vec<Value> = report
        .blocks
        .iter()
        .filter_map(|block| match block {
            Block::Paragraph(parts) => Some(paragraph(parts)),
            Block::Heading(text) if !text.is_empty() => Some(json!({
                "type": "heading",
                "attrs": {"level": 3},
                "content": [{"type": "text", "text": text}],
            })),
            Block::Bullets(items) if !items.is_empty() => Some(json!({
                "type": "bulletList",
                "content": items
                    .iter()
                    .map(|item| json!({"type": "listItem", "content": [paragraph(item)]}))
                    .collect::<Vec<_>>(),
            })),
            _ => None,
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": content})
}

/// Whether every `text` node of `node` has text (the schema's rule), for the tests.
pub fn every_text_has_content(node: &Value) -> bool {
    match node {
        Value::Object(map) => {
            let text_ok = map.get("type") != Some(&Value::String("text".into()))
                || map
                    .get("text")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty());
            text_ok && map.values().all(every_text_has_content)
        }
        Value::Array(items) => items.iter().all(every_text_has_content),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_a_document_of_paragraphs_headings_and_lists() {
        let report = Report {
            title: "t".into(),
            blocks: vec![
                Block::Paragraph(vec![
                    Inline::Strong("Customer:".into()),
                    Inline::Text(" ".into()),
                    Inline::Text(String::new()),
                    Inline::Link {
                        text: "open".into(),
                        url: "https://x.test/a".into(),
                    },
                ]),
                Block::Heading("What went wrong".into()),
                Block::Bullets(vec![vec![Inline::Text("3:32 into the session".into())]]),
            ],
        };
        let doc = document(&report);
        assert_eq!(
            doc,
            json!({"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "Customer:", "marks": [{"type": "strong"}]},
                    {"type": "text", "text": " "},
                    {"type": "text", "text": "open", "marks": [{"type": "link", "attrs": {"href": "https://x.test/a"}}]},
                ]},
                {"type": "heading", "attrs": {"level": 3}, "content": [{"type": "text", "text": "What went wrong"}]},
                {"type": "bulletList", "content": [{"type": "listItem", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "3:32 into the session"}]}
                ]}]},
            ]})
        );
        assert!(every_text_has_content(&doc));
    }
}
