'use strict';
// The demo echo server: every message comes straight back, and http://HOST:PORT/ serves a page that talks to
// it. HOST and PORT come from the environment.
const fs = require('fs');
const path = require('path');
const { WebSocket } = require('..');

const page = fs.readFileSync(path.join(__dirname, 'index.html'));

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 8080);

// DEFLATE=1 turns on permessage-deflate (RFC 7692).
const perMessageDeflate = Boolean(process.env.DEFLATE && process.env.DEFLATE !== '0');
// TLS_CERT and TLS_KEY (PEM file paths) make it a wss:// server.
const tls = process.env.TLS_CERT ? { cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) } : {};
const server = WebSocket.Server({ address: host, port, maxPayload: 64 * 1024 * 1024, perMessageDeflate, ...tls });
// One handler for every connection (it is called with the connection as `this`): a closure per connection would
// cost each about 100 bytes more.
function echo(msg) {
  this.send(msg);
}
server.onconnect = function (ws) {
  ws.onmessage = echo;
};
server.onrequest = function (req, res) {
  if (req.method !== 'GET' || req.url !== '/') return res.end(404);
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(page);
};
const shown = host.includes(':') ? `[${host}]` : host;
console.log(`listening ${tls.cert ? 'wss' : 'ws'}://${shown}:${server.port}/`);

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close());
