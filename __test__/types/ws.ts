// A ws server as TypeScript users write it: only the import differs from one written for ws.
import * as http from 'http';
import { WebSocketServer, WebSocket, RawData, createWebSocketStream } from 'ferrows/ws';

const wss = new WebSocketServer({ port: 8080, perMessageDeflate: { threshold: 1024 }, maxPayload: 1 << 20 });
wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => {
  const address: string | undefined = req.socket.remoteAddress;
  ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary }));
  ws.on('close', (code: number, reason: Buffer) => console.log(address, code, reason.toString()));
  ws.on('pong', (data) => data.length);
  ws.send('hello', (err) => { if (err) ws.terminate(); });
  ws.ping();
  if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 1024) ws.send(Buffer.from('x'), { fin: false });
  ws.subscribe('news');
  const duplex = createWebSocketStream(ws, { encoding: 'utf8' });
  duplex.pipe(process.stdout);
  // @ts-expect-error close codes are numbers
  ws.close('1000');
});
wss.on('headers', (headers: string[]) => headers.push('X-Served-By: ferrows'));
const delivered: { sent: number; skipped: number } = wss.publish('news', 'hi');
wss.broadcast(JSON.stringify(delivered));
for (const client of wss.clients) client.close(1001, 'bye');

const server = http.createServer();
const attached = new WebSocketServer({
  noServer: true,
  verifyClient: (info, done) => done(info.origin === 'https://example.com', 403),
  handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false),
});
server.on('upgrade', (req, socket, head) => {
  attached.handleUpgrade(req, socket, head, (ws) => attached.emit('connection', ws, req));
});
wss.close(() => server.close());

// ferrows's production additions, typed on every face.
const limited = new WebSocketServer({ port: 0, maxConnections: 1000, idleTimeout: 60, rateLimit: 'pause', maxMessagesPerSecond: 100 });
const received: number = limited.stats().messagesIn;
limited.drain({ code: 1001, within: 5000 }).then(() => limited.subscriberCount('news')).then((n: number) => n + received);
