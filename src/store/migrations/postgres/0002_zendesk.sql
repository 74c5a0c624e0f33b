-- Item claims (PostgreSQL): which items of a scope someone already holds, so that two jobs never both
-- post the same thing. Zendesk uses it for "a ticket never shows the same session twice" (scope
-- `zendesk:ticket:<id>`, items `session:<id>`, `empty-note`, `fullstory-event`, …) and to refuse a
-- delivery whose content was accepted minutes ago under another invocation id (`delivery:<hash>`).
-- No customer emails are stored here.

CREATE TABLE item_claims (
    scope      TEXT   NOT NULL,
    item       TEXT   NOT NULL,
    owner      TEXT   NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (scope, item)
);
