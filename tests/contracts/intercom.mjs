// The Intercom half of tests/contracts/run: every Intercom canvas snapshot (an insta snapshot whose JSON
// has a top-level `canvas`) type-checked by TypeScript against the Canvas Kit types Intercom publishes
// in its npm client, intercom-client 6.x (`InitializeResponse`, `SubmitResponse`: CanvasObject,
// ContentObject, Component, ListItem, ActionComponent; removed from the 7.x client). Each canvas becomes
// `const canvas: Intercom.InitializeResponse = <json>;` in a .ts file, and `tsc --noEmit --strict`
// fails on any component type, field or value the types do not allow (object literals get excess
// property checks, so an unknown field fails too). Also: content and stored_data at most 64 KB each.
// Usage: node intercom.mjs ROOT OUT
import { readFileSync, writeFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';

const [root, outArg] = process.argv.slice(2);
const out = resolve(outArg);
const modules = process.env.CONTRACTS_NODE_MODULES;
mkdirSync(out, { recursive: true });

function* snapshots(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* snapshots(path);
    else if (name.endsWith('.snap') && dir.endsWith('snapshots')) yield path;
  }
}

const problems = [];
const files = [];
for (const base of ['src', 'tests']) {
  for (const path of snapshots(join(root, base))) {
    const text = readFileSync(path, 'utf8');
    const parts = text.split('\n---\n');
    const body = text.startsWith('---') && parts.length >= 2 ? parts.slice(1).join('\n---\n') : text;
    let value;
    try { value = JSON.parse(body); } catch { continue; }
    if (!value || typeof value !== 'object' || !value.canvas) continue;
    const name = relative(root, path);
    for (const part of ['content', 'stored_data']) {
      const size = Buffer.byteLength(JSON.stringify(value.canvas[part] ?? null));
      if (size > 64_000) problems.push(`${name}: ${part} is ${size} bytes (Intercom takes 64 KB)`);
    }
    const file = join(out, `canvas${files.length}.ts`);
    writeFileSync(file,
      `// ${name}\nimport type { Intercom } from "intercom-client";\n` +
      `export const initialize: Intercom.InitializeResponse = ${JSON.stringify(value)};\n` +
      `export const submit: Intercom.SubmitResponse = ${JSON.stringify(value)};\n`);
    files.push(file);
  }
}
if (files.length === 0) problems.push('no Intercom canvas snapshot found');
writeFileSync(join(out, 'tsconfig.json'), JSON.stringify({
  compilerOptions: {
    strict: true, noEmit: true, skipLibCheck: true, target: 'es2020', module: 'nodenext',
    moduleResolution: 'nodenext', typeRoots: [], types: [], baseUrl: '.',
    paths: { 'intercom-client': [join(modules, 'intercom-client')] },
  },
  files,
}));
try {
  execFileSync(join(modules, '.bin', 'tsc'), ['-p', join(out, 'tsconfig.json')], { stdio: 'pipe' });
} catch (error) {
  problems.push(String(error.stdout || error.message));
}
if (problems.length) {
  console.log(problems.join('\n'));
  process.exit(1);
}
console.log(`  ${files.length} canvases type-check as InitializeResponse and SubmitResponse`);
