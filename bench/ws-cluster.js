'use strict';
// The `ws` echo server under node:cluster with WORKERS processes sharing the port (the usual way to use
// more than one core with ws).
const cluster = require('cluster');

if (cluster.isPrimary) {
  const workers = Number(process.env.WORKERS || 2);
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('message', (msg) => {
      if (msg === 'listening' && ++listening === workers) console.log(`listening ws://127.0.0.1:${process.env.PORT}/`);
    });
  }
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); });
} else {
  const { WebSocketServer } = require('ws');
  const wss = new WebSocketServer({ host: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 8080), perMessageDeflate: false });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  wss.on('listening', () => process.send('listening'));
}
