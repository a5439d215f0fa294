'use strict';
// The echo server of examples/echo.js with every limit switched on (none reached by the benchmark), to measure
// what checking them costs: connection counts per address, token buckets, the idle and lifetime timer.
const { WebSocket } = require('..');

const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || '127.0.0.1';
const server = WebSocket.Server({
  address: host, port, maxPayload: 64 * 1024 * 1024,
  maxConnections: 100_000, maxConnectionsPerIp: 10_000,
  maxMessagesPerSecond: 10_000_000, maxBytesPerSecond: 1e12,
  idleTimeout: 600, maxLifetime: 600,
});
server.onconnect = (ws) => { ws.onmessage = (msg) => ws.send(msg); };
console.log(`listening ws://${host}:${server.port}/`);
