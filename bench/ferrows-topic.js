'use strict';
// Topic benchmark server, sack face, one of several processes on a Redis backplane: every connection subscribes
// to one topic, and every message received is published to it (native fan-out, here and in the other processes).
const { WebSocket } = require('..');

const server = WebSocket.Server({
  address: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 8080),
  backplane: { redis: process.env.REDIS_URL, name: 'bench' },
});
server.onconnect = function (ws) {
  ws.subscribe('bench');
  ws.onmessage = (msg) => server.publish('bench', msg);
};
let ready = false;
server.on('backplane', (state) => {
  if (state === 'up' && !ready) console.log(`listening ws://127.0.0.1:${server.port}/`);
  ready = true;
});
