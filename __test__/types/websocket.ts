// A WebSocket-Node server as TypeScript users write it, with the import changed to ferrows/websocket.
import * as http from 'http';
import { server as WebSocketServer, request, connection, Message } from 'ferrows/websocket';

const httpServer = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const wsServer = new WebSocketServer({ httpServer, autoAcceptConnections: false, maxReceivedMessageSize: 1 << 20 });
wsServer.on('request', (req: request) => {
  if (req.origin !== 'https://example.com') return req.reject(403, 'origin');
  const conn: connection = req.accept(req.requestedProtocols[0] ?? null, req.origin);
  conn.on('message', (message: Message) => {
    if (message.type === 'utf8' && message.utf8Data !== undefined) conn.sendUTF(message.utf8Data);
    else if (message.binaryData) conn.sendBytes(message.binaryData);
  });
  conn.on('ping', (cancel, data) => { if (data.length > 100) cancel(); });
  conn.on('close', (code: number, description: string) => console.log(conn.remoteAddress, code, description));
  conn.subscribe('room');
  // @ts-expect-error sendBytes takes a Buffer
  conn.sendBytes('text');
});
wsServer.broadcastUTF('hello');
httpServer.listen(8080);
