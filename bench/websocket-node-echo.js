'use strict';
// An echo server written for WebSocket-Node (sendUTF/sendBytes on 'message'), run on ferrows/websocket — or on
// the real `websocket` package with IMPL=websocket.
const http = require('http');
const { server: WebSocketServer } = process.env.IMPL === 'websocket' ? require('websocket') : require('../lib/faces/websocket.js');

const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || '127.0.0.1';
const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const wss = new WebSocketServer({ httpServer: server, maxReceivedFrameSize: 64 * 1024 * 1024, maxReceivedMessageSize: 64 * 1024 * 1024 });
wss.on('request', (request) => {
  const connection = request.accept(null, request.origin);
  connection.on('message', (message) => {
    if (message.type === 'utf8') connection.sendUTF(message.utf8Data);
    else connection.sendBytes(message.binaryData);
  });
});
server.listen(port, host, () => console.log(`listening ws://${host}:${server.address().port}/`));
