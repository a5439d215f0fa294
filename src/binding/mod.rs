//! The napi binding: the native classes JavaScript faces build on, and the per-thread event pump that carries
//! network events to JavaScript in batches.

pub mod connection;
mod direct;
pub mod dispatch;
pub mod events;
mod handles;
pub mod http;
pub mod protocol;
pub mod pump;
pub mod server;
pub mod stats;
pub mod threads;
mod values;
