'use strict';
// Topic benchmark server, ws + the `redis` client: what ws users write to span processes. Every message received
// is published on a Redis channel; every process is subscribed to it and sends each message to its own local
// subscribers in a JavaScript loop.
const { WebSocketServer, WebSocket } = require('ws');
const { createClient } = require('redis');

async function main() {
  const publisher = createClient({ url: process.env.REDIS_URL });
  const subscriber = publisher.duplicate();
  await Promise.all([publisher.connect(), subscriber.connect()]);
  const subscribers = new Set();
  await subscriber.subscribe('bench', (message) => {
    for (const ws of subscribers) if (ws.readyState === WebSocket.OPEN) ws.send(message);
  });
  const wss = new WebSocketServer({ host: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 8080), perMessageDeflate: false });
  wss.on('connection', (ws) => {
    subscribers.add(ws);
    ws.on('close', () => subscribers.delete(ws));
    ws.on('message', (data) => publisher.publish('bench', data));
  });
  wss.on('listening', () => console.log(`listening ws://127.0.0.1:${wss.address().port}/`));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
