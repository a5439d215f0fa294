'use strict';
// Taking over a socket that Node's HTTP server accepted and read an upgrade request from — the one path every
// face that attaches to an http.Server uses. A plain TCP socket is handed over by its descriptor and runs
// natively from then on; any other socket (the TLS socket of an https.Server, a unix socket, a custom stream)
// stays in Node and JavaScript relays its bytes to the same native protocol engine, with backpressure both ways.
const { register } = require('./pump.js');

/**
 * Hands `socket` (whose request `req` Node parsed; `head` is what followed it) to the detached native server
 * `nativeServer`. `tag` comes back in the connection's handshake, to match it with this call. Throws on failure.
 */
function takeOver(nativeServer, req, socket, head, tag) {
  const handle = socket._handle;
  const tcp = handle && handle.constructor.name === 'TCP' && typeof handle.fd === 'number' && handle.fd >= 0 && !socket.encrypted;
  if (tcp) handle.readStop(); // from here on the native side reads this socket
  const buffered = [head];
  let chunk;
  while ((chunk = socket.read()) !== null) buffered.push(chunk);
  if (tcp) {
    // Read the addresses while the descriptor is Node's: net.Socket keeps them, so req.socket.remoteAddress and
    // the like still answer after the socket is handed over (they are what applications log and rate-limit by).
    void socket.remoteAddress;
    void socket.localAddress;
    nativeServer.adopt(handle.fd, tag, req.method, req.url, req.rawHeaders, Buffer.concat(buffered));
    socket.destroy(); // Node's descriptor only: the native side holds its own
  } else {
    relay(nativeServer, req, socket, Buffer.concat(buffered), tag);
  }
}

function relay(nativeServer, req, socket, buffered, tag) {
  const bridge = nativeServer.bridge(tag, req.method, req.url, req.rawHeaders, buffered,
    socket.remoteAddress || '', socket.remotePort || 0, socket.localAddress || '', socket.localPort || 0);
  register(bridge.slot, {
    _onOutput(ab) {
      if (!socket.destroyed && !socket.write(Buffer.from(ab))) bridge.setBlocked(true);
    },
    _onBridgeEnd(abort) {
      if (abort) socket.destroy();
      else socket.end();
    },
    _onBridgeResume() { socket.resume(); },
    _onClose() {},
  });
  socket.on('drain', () => bridge.setBlocked(false));
  socket.on('data', (data) => { if (!bridge.feed(data)) socket.pause(); });
  socket.on('end', () => bridge.end());
  socket.on('close', () => bridge.release());
  socket.on('error', () => {});
}

/**
 * The sockets a face handed to its detached native server, each with what the face needs again when the
 * connection's upgrade arrives (its request, a callback): the tag that comes back in the handshake matches them.
 */
class Handovers {
  constructor(nativeServer) {
    this._native = nativeServer;
    this._waiting = new Map();
    this._nextTag = 1;
  }

  /** Takes over `socket` (see takeOver), keeping `context` for its connection; throws if it cannot. */
  hand(req, socket, head, context) {
    const tag = this._nextTag++;
    this._waiting.set(tag, context);
    try {
      takeOver(this._native, req, socket, head, tag);
    } catch (err) {
      this._waiting.delete(tag);
      throw err;
    }
  }

  /** The context kept for the connection with this handshake (undefined for one the native server accepted). */
  claim(handshake) {
    const context = this._waiting.get(handshake.tag);
    this._waiting.delete(handshake.tag);
    return context;
  }
}

module.exports = { takeOver, Handovers };
