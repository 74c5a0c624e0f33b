#!/usr/bin/env bash
# Regenerates the platform setup files in deploy/ from the replaydesk binary:
#   deploy/slack/manifest.yaml              replaydesk slack manifest --url https://replaydesk.example.com
#   deploy/slack/manifest-socket-mode.yaml  replaydesk slack manifest --url https://replaydesk.example.com --socket-mode
#   deploy/zendesk/webhook.json             the webhook    of replaydesk zendesk setup --url https://replaydesk.example.com
#   deploy/zendesk/triggers.json            the triggers   of the same output, as one array
#   deploy/discord/commands.json            the body replaydesk discord register PUTs to Discord
#
# tests/deploy.rs builds and runs the binary with only placeholder configuration (no file; for Discord
# REPLAYDESK_DISCORD__APPLICATION_ID=123456789012345678, a placeholder bot token and
# REPLAYDESK_DISCORD__API_URL pointing at a fake Discord on loopback, which catches the body), and
# fails when a committed file differs from that output. With DEPLOY_REGENERATE set it writes them instead.
# For your own host, run the commands above with your --url.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPLOY_REGENERATE=1 cargo test --locked --test deploy platform_files
git status --short -- deploy/slack deploy/zendesk deploy/discord
