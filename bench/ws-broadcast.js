'use strict';
// Broadcast benchmark server, ws: the loop over wss.clients that ws users write.
const { WebSocketServer, WebSocket } = require('ws');

const wss = new WebSocketServer({ host: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 8080), perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
wss.on('listening', () => console.log(`listening ws://127.0.0.1:${wss.address().port}/`));
