'use strict';
// The `ws` echo server the benchmarks compare against: the same behaviour as examples/echo.js.
const { WebSocketServer } = require('ws');

const port = Number(process.env.PORT || 8080);
const fs = require('fs');
const https = require('https');

const perMessageDeflate = Boolean(process.env.DEFLATE && process.env.DEFLATE !== '0');
const host = process.env.HOST || '127.0.0.1';
const options = { perMessageDeflate, maxPayload: 64 * 1024 * 1024 };
let wss;
if (process.env.TLS_CERT) {
  // wss:// the way ws users do it: an https.Server to attach to.
  const server = https.createServer({ cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) });
  wss = new WebSocketServer({ server, ...options });
  server.listen(port, host, () => console.log(`listening wss://${host}:${server.address().port}/`));
} else {
  wss = new WebSocketServer({ host, port, ...options });
  wss.on('listening', () => console.log(`listening ws://${host}:${wss.address().port}/`));
}
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
