'use strict';
// Broadcast benchmark server, sack face: every message received goes to every client (native broadcast).
const { WebSocket } = require('..');

const server = WebSocket.Server({ address: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 8080) });
server.onconnect = function (ws) {
  ws.onmessage = (msg) => server.broadcast(msg);
};
console.log(`listening ws://127.0.0.1:${server.port}/`);
