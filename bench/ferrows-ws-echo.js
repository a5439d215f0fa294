'use strict';
// The ws echo server of bench/ws-echo.js, written against ferrows/ws (the one-line change from ws).
// MODE=port: { port }; MODE=server: attached to a Node http.Server.
const http = require('http');
const { WebSocketServer } = require('../lib/faces/ws.js');

const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || '127.0.0.1';
const onConnection = (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));

if (process.env.MODE === 'server') {
  const server = http.createServer((req, res) => res.end());
  new WebSocketServer({ server, perMessageDeflate: false }).on('connection', onConnection);
  server.listen(port, host, () => console.log(`listening ws://${host}:${port}/`));
} else {
  const wss = new WebSocketServer({ host, port, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  wss.on('connection', onConnection);
  wss.on('listening', () => console.log(`listening ws://${host}:${wss.address().port}/`));
}
