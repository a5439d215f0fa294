'use strict';
// The uWebSockets.js echo server the speed targets are measured against (npm `uwebsockets`, found through
// NODE_PATH or node_modules; bench/run.js adds it to the echo scenarios when it resolves). Compression off.
const uWS = require('uwebsockets');

const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || '127.0.0.1';
uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 0,
  message: (ws, message, isBinary) => { ws.send(message, isBinary); },
}).listen(host, port, (token) => {
  if (!token) {
    console.error(`cannot listen on ${host}:${port}`);
    process.exit(1);
  }
  console.log(`listening ws://${host}:${port}/`);
});
