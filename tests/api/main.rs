//! End-to-end tests: the real router, the real HTTP clients and the real binary, with every upstream
//! faked on loopback by wiremock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod activations;
mod budget;
mod cli;
mod demo;
mod discord;
mod escalate;
mod fakes;
mod fullstory;
mod helpers;
mod intercom;
mod jobs;
mod lookup;
mod operator;
mod outage;
mod privacy;
mod processes;
mod rate_limits;
mod server;
mod slack;
mod stored_jobs;
mod zendesk;
mod zendesk_sidebar;
