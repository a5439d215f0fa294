//! ferrows: a WebSocket server for Node.js. Three layers, each in its own module:
//! `protocol` (sans-IO RFC 6455), `net` (the tokio runtime, sockets and write queues) and `binding`
//! (the napi classes and the per-thread event pump). The JavaScript faces sit on top of `binding`.

mod allocator;
pub mod protocol;
pub mod net;
pub mod binding;

#[macro_use]
extern crate napi_derive;
