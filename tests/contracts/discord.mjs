// The Discord half of tests/contracts/run: every Discord payload snapshot through @discordjs/builders'
// validators (the embed and button setters and ButtonBuilder#toJSON validate), plus the message-level
// limits the builders do not check: 10 embeds and 6,000 characters of embed text per message
// (embedLength), content 2,000, 5 action rows of 5 components, link-button url 512.
// Usage: node discord.mjs ALLOWLIST FILE...   (each FILE: {"path", "message"} from checks.py)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.CONTRACTS_NODE_MODULES + '/');
const { EmbedBuilder, ActionRowBuilder, ButtonBuilder, embedLength } = require('@discordjs/builders');

const [allowPath, ...files] = process.argv.slice(2);
let allowed = new Set();
try {
  allowed = new Set(
    readFileSync(allowPath, 'utf8').split('\n').map((l) => l.split('#')[0].trim()).filter(Boolean),
  );
} catch {}

function problemsOf(message) {
  const problems = [];
  const embeds = message.embeds ?? [];
  if (embeds.length > 10) problems.push(`${embeds.length} embeds (Discord allows 10)`);
  if ((message.content ?? '').length > 2000) problems.push(`content of ${message.content.length} characters`);
  let total = 0;
  embeds.forEach((embed, n) => {
    try {
      const b = new EmbedBuilder();
      if (embed.title !== undefined) b.setTitle(embed.title);
      if (embed.description !== undefined) b.setDescription(embed.description);
      if (embed.url !== undefined) b.setURL(embed.url);
      if (embed.color !== undefined) b.setColor(embed.color);
      if (embed.timestamp !== undefined) b.setTimestamp(new Date(embed.timestamp));
      if (embed.footer !== undefined) b.setFooter(embed.footer);
      if (embed.author !== undefined) b.setAuthor(embed.author);
      if (embed.thumbnail !== undefined) b.setThumbnail(embed.thumbnail.url);
      if (embed.image !== undefined) b.setImage(embed.image.url);
      if (embed.fields !== undefined) b.addFields(embed.fields);
      total += embedLength(b.toJSON());
    } catch (error) {
      problems.push(`embed ${n}: ${String(error.message ?? error).slice(0, 400)}`);
    }
  });
  if (total > 6000) problems.push(`embeds total ${total} characters (Discord allows 6,000 per message)`);
  const rows = message.components ?? [];
  if (rows.length > 5) problems.push(`${rows.length} action rows (Discord allows 5)`);
  rows.forEach((row, r) => {
    try {
      if (row.type !== 1) throw new Error(`top-level component of type ${row.type}, not an action row`);
      if ((row.components ?? []).length > 5) throw new Error(`${row.components.length} components (max 5)`);
      const buttons = (row.components ?? []).map((c) => {
        if (c.type !== 2) throw new Error(`component type ${c.type} is not checked here`);
        const button = new ButtonBuilder().setStyle(c.style).setDisabled(Boolean(c.disabled));
        if (c.label !== undefined) button.setLabel(c.label);
        if (c.custom_id !== undefined) button.setCustomId(c.custom_id);
        if (c.url !== undefined) {
          if (c.url.length > 512) throw new Error(`link button url of ${c.url.length} characters (max 512)`);
          button.setURL(c.url);
        }
        if (c.emoji !== undefined) button.setEmoji(c.emoji);
        button.toJSON();
        return button;
      });
      new ActionRowBuilder().addComponents(buttons).toJSON();
    } catch (error) {
      problems.push(`row ${r}: ${String(error.message ?? error).slice(0, 400)}`);
    }
  });
  return problems;
}

let failed = 0;
let expected = 0;
for (const file of files) {
  const { path, message } = JSON.parse(readFileSync(file, 'utf8'));
  const name = path.split('/').pop();
  const problems = problemsOf(message);
  if (problems.length && allowed.has(name)) {
    expected += 1;
    console.log(`  expected failure (allow-listed): ${path}: ${problems.join('; ')}`);
  } else if (problems.length) {
    failed += 1;
    console.log(`  FAIL ${path}: ${problems.join('; ')}`);
  } else if (allowed.has(name)) {
    failed += 1;
    console.log(`  FAIL ${path}: passes now; remove it from ${allowPath}`);
  }
}
console.log(`  ${files.length} Discord message snapshots, ${failed} failed, ${expected} allow-listed`);
process.exit(failed || files.length === 0 ? 1 : 0);
