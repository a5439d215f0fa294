'use strict';
// Echo server for the worker benchmark: the main thread listens and posts every socket to WORKERS
// worker_threads (persistent Thread.accept, round robin), which echo.
const { Worker, isMainThread } = require('worker_threads');
const { WebSocket } = require('..');

if (isMainThread) {
  const workers = Number(process.env.WORKERS || 2);
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    new Worker(__filename).on('message', () => {
      if (++ready < workers) return;
      const server = WebSocket.Server({ address: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 8080) });
      server.onaccept = function (ws) { ws.post('echo'); };
      console.log(`listening ws://127.0.0.1:${server.port}/`);
    });
  }
} else {
  const { parentPort } = require('worker_threads');
  WebSocket.Thread.accept('echo', (name, ws) => {
    ws.onmessage = (m) => ws.send(m);
    ws.resume();
  }, { persistent: true });
  parentPort.postMessage('ready');
}
