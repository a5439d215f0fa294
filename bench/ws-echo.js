'use strict';
// The `ws` echo server the benchmarks compare against: the same behaviour as examples/echo.js.
const { WebSocketServer } = require('ws');

const port = Number(process.env.PORT || 8080);
const perMessageDeflate = Boolean(process.env.DEFLATE && process.env.DEFLATE !== '0');
const wss = new WebSocketServer({ host: process.env.HOST || '127.0.0.1', port, perMessageDeflate, maxPayload: 64 * 1024 * 1024 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => console.log(`listening ws://127.0.0.1:${wss.address().port}/`));
