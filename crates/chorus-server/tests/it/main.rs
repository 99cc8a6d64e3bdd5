//! Integration tests: the real server on 127.0.0.1:0 and real WebSocket clients.

mod api;
mod auth;
mod auth_callback;
mod awareness;
mod crash;
mod doc_compact;
mod drain;
mod embed;
mod helpers;
mod honest_corpus;
mod honest_sessions;
mod hostile;
mod hostile_corpus;
mod http;
mod limits;
mod liveness;
mod metrics;
mod misbehaviour;
mod persistence;
mod quarantine;
mod relay;
mod relay_cluster;
mod s3;
mod sync;
mod webhooks;
