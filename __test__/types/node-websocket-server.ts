// A node-websocket-server chat as its users write it, with the import changed.
import { createServer, Connection } from 'ferrows/node-websocket-server';

const server = createServer({ origin: '*', subprotocol: ['chat'] });
server.on('connection', (conn: Connection) => {
  conn.on('message', (message: string) => conn.broadcast(`${conn.id}: ${message}`));
  conn.on('stateChange', (state, previous) => console.log(state, previous));
  server.send(conn.id, 'welcome');
});
server.on('disconnect', (conn) => server.broadcast(`${conn.id} left`));
server.listen(8000);
// @ts-expect-error connection ids are numbers
server.send('1', 'x');
