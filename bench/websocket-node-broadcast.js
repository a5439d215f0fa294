'use strict';
// Broadcast benchmark server written for WebSocket-Node: every message goes out with broadcastUTF.
// IMPL=websocket runs it on the real `websocket` package, otherwise on ferrows/websocket.
const http = require('http');
const { server: WebSocketServer } = process.env.IMPL === 'websocket' ? require('websocket') : require('../lib/faces/websocket.js');

const server = http.createServer();
const wss = new WebSocketServer({ httpServer: server, autoAcceptConnections: true, keepalive: false });
wss.on('connect', (connection) => {
  connection.on('message', (message) => wss.broadcastUTF(message.utf8Data));
});
server.listen(Number(process.env.PORT || 8080), process.env.HOST || '127.0.0.1', () => console.log(`listening ws://127.0.0.1:${server.address().port}/`));
