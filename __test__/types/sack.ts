// The sack-style face, typed.
import { WebSocket } from 'ferrows';

const server = WebSocket.Server({ port: 8080, perMessageDeflate: true });
server.onaccept = function (ws) {
  if (ws.url !== '/chat') return this.reject();
  this.accept(ws.protocols[0]);
};
server.onconnect = function (ws) {
  ws.onmessage = (msg) => ws.send(msg);
  ws.onclose = (code, reason) => console.log(code, reason);
};
// @ts-expect-error a handler is a function
server.onclose = 'closed';
const limited = WebSocket.Server({ port: 0, maxConnectionsPerIp: 10, maxLifetime: 60 });
limited.drain().then(() => limited.stats().connections);
// @ts-expect-error rateLimit is 'close' or 'pause'
WebSocket.Server({ port: 0, rateLimit: 'slow' });
