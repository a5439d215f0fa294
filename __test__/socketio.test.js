'use strict';
// socket.io on ferrows/ws: engine.io's `wsEngine` option takes the class, the rest is socket.io's own code,
// spoken to by socket.io-client. Each scenario runs on ws too (engine.io's default), which must agree.
const test = require('ava');
const http = require('http');
const { Server } = require('socket.io');
const { io } = require('socket.io-client');
const WebSocket = require('ws');
const FerrowsWs = require('ferrows/ws');
const { once } = require('./helpers.js');

async function start(t, engine) {
  const httpServer = http.createServer();
  const server = new Server(httpServer, { wsEngine: engine.Server });
  t.teardown(() => server.close());
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  t.true(server.engine.ws instanceof engine.WebSocketServer);
  return { server, url: `http://127.0.0.1:${httpServer.address().port}` };
}

function client(t, url, options) {
  const socket = io(url, { reconnection: false, ...options });
  t.teardown(() => socket.disconnect());
  return socket;
}

// once() gives all of an event's arguments when there are several: the disconnect reason is the first.
const reason = (args) => (Array.isArray(args) ? args[0] : args);

const emitted = (socket, event, ...args) => new Promise((resolve) => socket.emit(event, ...args, resolve));

const ENGINES = [['ferrows/ws', FerrowsWs], ['ws', WebSocket]];
const TRANSPORTS = [['WebSocket from the start', { transports: ['websocket'] }], ['polling upgraded to WebSocket', {}]];

for (const [engineName, engine] of ENGINES) for (const [name, options] of TRANSPORTS) {
  test(`socket.io on ${engineName}, ${name}: events both ways, acks, binary, rooms, the address, disconnect`, async (t) => {
    const { server, url } = await start(t, engine);
    const connected = once(server, 'connection');
    server.on('connection', (socket) => {
      socket.on('echo', (data, ack) => ack(data));
      socket.on('join', (room, ack) => { socket.join(room); ack(); });
      socket.on('shout', (room, text) => server.to(room).emit('heard', text));
    });
    const a = client(t, url, options);
    const b = client(t, url, options);
    const serverSide = await connected;
    await Promise.all([once(a, 'connect'), b.connected ? null : once(b, 'connect')]);
    if (!options.transports) await once(a.io.engine, 'upgrade');
    t.is(a.io.engine.transport.name, 'websocket');
    t.is(serverSide.handshake.address, '127.0.0.1');
    t.deepEqual(await emitted(a, 'echo', { text: 'héllo', n: 1 }), { text: 'héllo', n: 1 });
    const binary = await emitted(a, 'echo', Buffer.from([0, 1, 2, 255]));
    t.deepEqual([...new Uint8Array(binary)], [0, 1, 2, 255]);
    await emitted(b, 'join', 'room');
    const heard = once(b, 'heard');
    a.emit('shout', 'room', 'to the room');
    t.is(await heard, 'to the room');
    const gone = once(serverSide, 'disconnect');
    a.disconnect();
    t.is(reason(await gone), 'client namespace disconnect');
    const closed = once(b, 'disconnect');
    server.close();
    t.is(reason(await closed), 'transport close'); // server.close() sends no DISCONNECT packet
  });
}
