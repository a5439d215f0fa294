'use strict';
const test = require('ava');
const { startServer, connect, once, messages, closeServer } = require('./helpers.js');
const { frame, rawConnect, closeCode } = require('./raw.js');

function echoServer(t, options = {}) {
  const closes = [];
  const server = startServer(t, options, (s) => {
    s.onconnect = function (ws) {
      ws.onmessage = (msg) => ws.send(msg);
      ws.onclose = (code, reason) => closes.push({ code, reason });
    };
  });
  return { server, closes };
}

async function violation(t, bytes, expectedCode, options) {
  const { server, closes } = echoServer(t, options);
  const raw = await rawConnect(server.port);
  raw.socket.write(bytes);
  // The server sends its close frame and then closes the TCP connection after the client's side ends.
  const frames = await Promise.race([raw.closed(), new Promise((r) => setTimeout(() => r(raw.received()), 3000))]);
  raw.socket.destroy();
  t.is(closeCode(frames), expectedCode);
  await closeServer(server);
  t.is(closes[0]?.code, expectedCode);
}

test('unmasked client frame closes with 1002', (t) => violation(t, frame(1, 'x', { mask: false }), 1002));
test('reserved bits without an extension close with 1002', (t) => violation(t, frame(1, 'x', { rsv: 4 }), 1002));
test('unknown opcode closes with 1002', (t) => violation(t, frame(3, 'x'), 1002));
test('fragmented ping closes with 1002', (t) => violation(t, frame(9, 'x', { fin: false }), 1002));
test('continuation with no message closes with 1002', (t) => violation(t, frame(0, 'x'), 1002));
test('invalid close code closes with 1002', (t) => violation(t, frame(8, Buffer.from([0x03, 0xed])), 1002));
test('invalid UTF-8 in text closes with 1007', (t) => violation(t, frame(1, Buffer.from([0x61, 0xff])), 1007));
test('invalid UTF-8 split over fragments closes with 1007', (t) =>
  violation(t, Buffer.concat([frame(1, Buffer.from([0xce]), { fin: false }), frame(0, Buffer.from([0x28]))]), 1007));
test('message over maxPayload closes with 1009', (t) => violation(t, frame(2, Buffer.alloc(2000)), 1009, { maxPayload: 1000 }));
test('fragments over maxPayload together close with 1009', (t) =>
  violation(t, Buffer.concat([frame(2, Buffer.alloc(600), { fin: false }), frame(0, Buffer.alloc(600))]), 1009, { maxPayload: 1000 }));

test('a frame header announcing a huge payload is refused at once, without waiting for the payload', async (t) => {
  const { server } = echoServer(t, { maxPayload: 1 << 20 });
  const raw = await rawConnect(server.port);
  // 8 GiB announced; only the header is sent.
  raw.socket.write(Buffer.from([0x82, 0xff, 0, 0, 0, 2, 0, 0, 0, 0, 1, 2, 3, 4]));
  const frames = await raw.closed();
  t.is(closeCode(frames), 1009);
  await closeServer(server);
});

test('ping gets a pong with the same payload; interleaved control frames do not break a fragmented message', async (t) => {
  const received = [];
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) { ws.onmessage = (msg) => received.push(msg); };
  });
  const raw = await rawConnect(server.port);
  raw.socket.write(Buffer.concat([
    frame(1, 'Hel', { fin: false }), frame(9, 'ping!'), frame(0, 'lo', { fin: false }), frame(10, 'unasked'), frame(0, ' you'),
    frame(8, Buffer.from([0x03, 0xe8])),
  ]));
  const frames = await raw.closed();
  t.deepEqual(frames.map((f) => [f.opcode, f.payload.toString('latin1')]), [[10, 'ping!'], [8, '\x03\xe8']]);
  t.deepEqual(received, ['Hello you']);
  await closeServer(server);
});

test('close handshake from the client: the server echoes the code and reports code and reason', async (t) => {
  const { server, closes } = echoServer(t);
  const ws = await connect(server);
  ws.close(4321, 'done here');
  const [code] = await once(ws, 'close');
  t.is(code, 4321);
  await closeServer(server);
  t.deepEqual(closes, [{ code: 4321, reason: 'done here' }]);
});

test('close from the server: code and reason reach the client; an over-long reason throws', async (t) => {
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) {
      t.throws(() => ws.close(1000, 'x'.repeat(124)), { instanceOf: RangeError });
      t.throws(() => ws.close(1005), { message: /invalid close code/ });
      ws.close(4000, 'bye now');
    };
  });
  const ws = await connect(server);
  const [code, reason] = await once(ws, 'close');
  t.is(code, 4000);
  t.is(String(reason), 'bye now');
  await closeServer(server);
});

test('a dropped TCP connection reports 1006, and send after close throws', async (t) => {
  let serverSide;
  const closed = new Promise((resolve) => {
    const server = startServer(t, {}, (s) => {
      s.onconnect = function (ws) { serverSide = ws; ws.onclose = (code) => resolve({ code, server }); };
    });
    connect(server).then((ws) => ws.terminate());
  });
  const { code, server } = await closed;
  t.is(code, 1006);
  t.is(serverSide.readyState, 3);
  t.throws(() => serverSide.send('late'), { message: 'Connection has already been closed.' });
  await closeServer(server);
});

test('server.close() closes every connection with 1001 and then fires close', async (t) => {
  const { server } = echoServer(t);
  const clients = await Promise.all([connect(server), connect(server)]);
  const codes = Promise.all(clients.map((ws) => once(ws, 'close').then(([code]) => code)));
  const serverClosed = new Promise((resolve) => server.on('close', resolve));
  server.close();
  t.is(server.readyState, 2);
  t.deepEqual(await codes, [1001, 1001]);
  await serverClosed;
  t.is(server.readyState, 3);
});

test('send() sends exactly the bytes of a view, not its whole buffer', async (t) => {
  const backing = new Uint8Array([9, 9, 1, 2, 3, 9, 9]);
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) {
      ws.send(backing.subarray(2, 5));
      ws.send(new DataView(backing.buffer, 3, 2));
      ws.send(new Uint16Array([0x0102]));
      ws.send(backing.buffer);
      ws.send(42);
    };
  });
  const ws = await connect(server);
  const got = await messages(ws, 5);
  t.deepEqual(got.map((m) => [...m.data]), [[1, 2, 3], [2, 3], [...Buffer.from(new Uint16Array([0x0102]).buffer)], [9, 9, 1, 2, 3, 9, 9], [...Buffer.from('42')]]);
  t.deepEqual(got.map((m) => m.isBinary), [true, true, true, true, false]);
  ws.terminate();
  await closeServer(server);
});

test('binary arrives as an ArrayBuffer and text as a string', async (t) => {
  const seen = [];
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) {
      ws.on('message', function (msg) { seen.push([this === ws, msg instanceof ArrayBuffer, typeof msg]); ws.send('ok'); });
    };
  });
  const ws = await connect(server);
  const done = messages(ws, 2);
  ws.send('text');
  ws.send(Buffer.from([1]));
  await done;
  t.deepEqual(seen, [[true, false, 'string'], [true, true, 'object']]);
  ws.terminate();
  await closeServer(server);
});

test('a peer that stops reading makes bufferedAmount grow, and drain fires once it reads again', async (t) => {
  let serverSide;
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) { serverSide = ws; };
  });
  const ws = await connect(server);
  ws._socket.pause();
  const chunk = Buffer.alloc(1 << 20, 1);
  for (let i = 0; i < 64 && serverSide.bufferedAmount === 0; i++) {
    for (let j = 0; j < 8; j++) serverSide.send(chunk);
    await new Promise((r) => setTimeout(r, 20));
  }
  t.true(serverSide.bufferedAmount > 0);
  const drained = new Promise((resolve) => serverSide.on('drain', resolve));
  ws._socket.resume();
  await drained;
  t.is(serverSide.bufferedAmount, 0);
  ws.terminate();
  await closeServer(server);
});

test('every ping is answered; ping and pong listeners see the latest of those read together, others pay nothing', async (t) => {
  const events = [];
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) {
      if (ws.url === '/listening') {
        ws.on('ping', (data) => events.push(['ping', Buffer.from(data).toString()]));
        ws.onpong = (data) => events.push(['pong', Buffer.from(data).toString()]);
      }
      ws.onmessage = (msg) => ws.send(msg);
    };
  });
  for (const path of ['/listening', '/quiet']) {
    const raw = await rawConnect(server.port, path);
    // One write: the pings are read together, then a message marks the end of what was sent.
    raw.socket.write(Buffer.concat([frame(9, 'a'), frame(9, 'b'), frame(9, 'c'), frame(10, 'x'), frame(10, 'y'), frame(1, 'end')]));
    const frames = await raw.frames(4);
    t.deepEqual(frames.map((f) => [f.opcode, f.payload.toString()]), [[10, 'a'], [10, 'b'], [10, 'c'], [1, 'end']]);
    raw.socket.destroy();
  }
  t.true(events.length >= 2);
  t.deepEqual(events.filter(([kind]) => kind === 'ping').at(-1), ['ping', 'c']);
  t.deepEqual(events.filter(([kind]) => kind === 'pong').at(-1), ['pong', 'y']);
  t.true(events.length <= 6 && events.every(([, data]) => 'abcxy'.includes(data)), 'only the listening connection reported');
});

test('a ping alone is answered at once, with nothing else to write and no ping listener', async (t) => {
  const { server } = echoServer(t);
  const raw = await rawConnect(server.port);
  raw.socket.write(frame(9, 'alone'));
  const [pong] = await raw.frames(1);
  t.deepEqual([pong.opcode, pong.payload.toString()], [10, 'alone']);
  raw.socket.destroy();
});
