'use strict';
// The WebSocket-Node face: `require('ferrows/websocket')` for the server side of the `websocket` package
// (v1.0.35): server, request, connection and router, shaped as that library's code behaves, over the native core.
// Sockets come from the application's http.Server(s) and are taken over as the ws face does (lib/takeover.js).
const EventEmitter = require('events');
const url = require('url');
const { native, register } = require('../pump.js');
const { Handovers } = require('../takeover.js');
const { backplaneOptions, addConnectionTopics, addServerTopics, emitBackplane } = require('../topics.js');
const { limitOptions, addOperations } = require('../operations.js');

const CLOSE_DESCRIPTIONS = {
  1000: 'Normal connection closure', 1001: 'Remote peer is going away', 1002: 'Protocol error',
  1003: 'Unprocessable input', 1004: 'Reserved', 1005: 'Reason not provided',
  1006: 'Abnormal closure, no further detail available', 1007: 'Invalid data received', 1008: 'Policy violation',
  1009: 'Message too big', 1010: 'Extension requested by client is required', 1011: 'Internal Server Error',
  1015: 'TLS Handshake Failed',
};
const CLOSE_REASONS = {
  CLOSE_REASON_NORMAL: 1000, CLOSE_REASON_GOING_AWAY: 1001, CLOSE_REASON_PROTOCOL_ERROR: 1002,
  CLOSE_REASON_UNPROCESSABLE_INPUT: 1003, CLOSE_REASON_RESERVED: 1004, CLOSE_REASON_NOT_PROVIDED: 1005,
  CLOSE_REASON_ABNORMAL: 1006, CLOSE_REASON_INVALID_DATA: 1007, CLOSE_REASON_POLICY_VIOLATION: 1008,
  CLOSE_REASON_MESSAGE_TOO_BIG: 1009, CLOSE_REASON_EXTENSION_REQUIRED: 1010,
  CLOSE_REASON_INTERNAL_SERVER_ERROR: 1011, CLOSE_REASON_TLS_HANDSHAKE_FAILED: 1015,
};
const SEPARATORS = '()<>@,;:\\"/[]?={} \t';

class WebSocketConnection extends EventEmitter {
  constructor(nativeConn, request, protocol) {
    super();
    this._native = nativeConn;
    nativeConn.setControlEvents(true); // pings are answered here, and 'pong' events are part of the API
    this.connected = true;
    this.state = 'open';
    this.protocol = protocol;
    this.extensions = [];
    this.remoteAddress = request.remoteAddress;
    this.webSocketVersion = request.webSocketVersion;
    this.closeReasonCode = -1;
    this.closeDescription = null;
    const remote = nativeConn.remote;
    const local = nativeConn.local;
    this.socket = { remoteAddress: remote.address, remotePort: remote.port, localAddress: local.address, localPort: local.port };
    register(nativeConn.slot, this);
  }

  send(data, cb) {
    if (Buffer.isBuffer(data)) return this.sendBytes(data, cb);
    if (data !== null && data !== undefined && typeof data.toString === 'function') return this.sendUTF(data, cb);
    throw new Error('Data provided must either be a Node Buffer or implement toString()');
  }

  sendUTF(data, cb) {
    this._native.sendAs(data.toString(), false);
    if (cb) process.nextTick(cb);
  }

  sendBytes(data, cb) {
    if (!Buffer.isBuffer(data)) throw new Error('You must pass a Node Buffer object to WebSocketConnection.prototype.sendBytes()');
    this._native.sendAs(data, true);
    if (cb) process.nextTick(cb);
  }

  ping(data) { this._native.ping(data === undefined ? undefined : Buffer.from(data)); }
  pong(data) { this._native.pong(data === undefined ? undefined : Buffer.from(data)); }
  pause() { this._native.setPaused(true); }
  resume() { this._native.setPaused(false); }

  close(reasonCode, description) {
    if (!this.connected) return;
    if (typeof reasonCode !== 'number') reasonCode = 1000;
    if (!native.isValidCloseCode(reasonCode)) throw new Error(`Close code ${reasonCode} is not valid.`);
    if (typeof description !== 'string') description = CLOSE_DESCRIPTIONS[reasonCode];
    this.closeReasonCode = reasonCode;
    this.closeDescription = description;
    this.state = 'ending';
    this.connected = false;
    this._native.close(reasonCode, fitReason(description));
  }

  drop(reasonCode, description, skipCloseFrame) {
    if (typeof reasonCode !== 'number') reasonCode = 1002;
    if (typeof description !== 'string') description = CLOSE_DESCRIPTIONS[reasonCode];
    this.closeReasonCode = reasonCode;
    this.closeDescription = description;
    if (this.connected && !skipCloseFrame && native.isValidCloseCode(reasonCode)) {
      this._native.close(reasonCode, fitReason(description));
    }
    this.connected = false;
    this._native.terminate();
  }

  _onText(buf) { this.emit('message', { type: 'utf8', utf8Data: buf.toString('utf8') }); }
  _onBinary(buf) { this.emit('message', { type: 'binary', binaryData: buf }); }
  _onDrain() { this.emit('drain'); }

  /** assembleFragments: false — each data frame as WebSocket-Node's frame object. */
  _onFrame([opcode, fin, ab]) {
    const binaryPayload = Buffer.from(ab);
    this.emit('frame', { fin: fin === 1, rsv1: false, rsv2: false, rsv3: false, mask: false, opcode, length: binaryPayload.length, binaryPayload });
  }
  _onPong(ab) { this.emit('pong', Buffer.from(ab)); }

  /** Pings are answered here (the native auto-pong is off) so that a 'ping' listener can cancel the answer. */
  _onPing(ab) {
    let cancelled = false;
    if (this.listenerCount('ping')) this.emit('ping', () => { cancelled = true; }, Buffer.from(ab));
    if (!cancelled && this.connected) this._native.pong(ab);
  }

  _onClose(code, reason) {
    this.connected = false;
    this.state = 'closed';
    if (this.closeReasonCode === -1) {
      this.closeReasonCode = code;
      this.closeDescription = reason || CLOSE_DESCRIPTIONS[code] || null;
    }
    this.emit('close', this.closeReasonCode, this.closeDescription);
  }
}
Object.assign(WebSocketConnection, CLOSE_REASONS, { CLOSE_DESCRIPTIONS });

function parseCookies(header) {
  if (!header) return [];
  return header.split(';').map((pair) => pair.trim()).filter(Boolean).map((pair) => {
    const eq = pair.indexOf('=');
    return eq < 0 ? { name: pair, value: '' } : { name: pair.slice(0, eq).trim(), value: decodeURIComponent(pair.slice(eq + 1).trim()) };
  });
}

/** `requestedExtensions`: the offers as parsed natively (a malformed header offers none). */
function parseExtensions(header) {
  if (!header) return [];
  return (native.parseExtensions(header) || []).map(({ name, params }) => ({
    name, params: params.map((p) => ({ name: p.name, value: p.value ?? undefined })),
  }));
}

/** A description too long for a close frame is left out, as WebSocket-Node does not send it either. */
const fitReason = (description) => (Buffer.byteLength(description) > native.MAX_CLOSE_REASON ? undefined : description);

function setCookieHeader(cookie) {
  if (!cookie || typeof cookie.name !== 'string' || cookie.value === undefined) throw new Error('Each cookie to set must at least provide a "name" and "value"');
  let value = `${cookie.name}=${encodeURIComponent(cookie.value)}`;
  if (cookie.path) value += `;Path=${cookie.path}`;
  if (cookie.domain) value += `;Domain=${cookie.domain}`;
  if (cookie.expires) value += `;Expires=${cookie.expires.toUTCString()}`;
  if (cookie.maxage) value += `;Max-Age=${cookie.maxage}`;
  if (cookie.secure) value += ';Secure';
  if (cookie.httponly) value += ';HttpOnly';
  return value;
}

class WebSocketRequest extends EventEmitter {
  constructor(server, nativeConn, httpRequest, handshake) {
    super();
    this._server = server;
    this._native = nativeConn;
    this._resolved = false;
    const headers = httpRequest.headers;
    const config = server.config;
    this.httpRequest = httpRequest;
    this.resource = httpRequest.url;
    this.resourceURL = url.parse(this.resource, true);
    this.host = headers.host;
    this.webSocketVersion = Number(headers['sec-websocket-version']);
    this.origin = this.webSocketVersion === 8 ? headers['sec-websocket-origin'] : headers.origin;
    this.key = headers['sec-websocket-key'];
    this.remoteAddress = nativeConn.remote.address;
    this.remoteAddresses = [this.remoteAddress];
    if (!config.ignoreXForwardedFor && headers['x-forwarded-for']) {
      this.remoteAddresses = headers['x-forwarded-for'].split(',').map((a) => a.trim()).concat(this.remoteAddress);
    }
    this._protocolCase = new Map(handshake.protocols.map((p) => [p.toLowerCase(), p]));
    this.requestedProtocols = handshake.protocols.map((p) => p.toLowerCase());
    this.requestedExtensions = config.parseExtensions ? parseExtensions(headers['sec-websocket-extensions']) : [];
    this.cookies = config.parseCookies ? parseCookies(headers.cookie) : [];
  }

  _verifyResolution() {
    if (this._resolved) throw new Error('WebSocketRequest may only be accepted or rejected one time.');
  }

  accept(acceptedProtocol, allowedOrigin, cookies) {
    this._verifyResolution();
    let protocol;
    if (acceptedProtocol) {
      protocol = this._protocolCase.get(acceptedProtocol.toLowerCase()) || acceptedProtocol;
      for (const ch of protocol) {
        if (ch.charCodeAt(0) < 0x21 || ch.charCodeAt(0) > 0x7e || SEPARATORS.includes(ch)) {
          this.reject(500);
          throw new Error(`Illegal character "${ch}" in subprotocol.`);
        }
      }
      if (!this.requestedProtocols.includes(acceptedProtocol.toLowerCase())) {
        this.reject(500);
        throw new Error('Specified protocol was not requested by the client.');
      }
    }
    const extra = [];
    if (allowedOrigin) extra.push(`${this.webSocketVersion === 8 ? 'Sec-WebSocket-Origin' : 'Origin'}: ${String(allowedOrigin).replace(/[\r\n]/g, '')}`);
    if (cookies) {
      if (!Array.isArray(cookies)) throw new Error('Value supplied for "cookies" argument must be an array.');
      const seen = new Set();
      for (const cookie of cookies) {
        if (seen.has(cookie.name)) throw new Error('You may not specify the same cookie name twice.');
        seen.add(cookie.name);
        extra.push(`Set-Cookie: ${setCookieHeader(cookie)}`);
      }
    }
    this._resolved = true;
    this.emit('requestResolved', this);
    this._native.setNodeBuffers(true); // before the 101: the client may send at once
    if (!this._server.config.assembleFragments) this._native.setFrames(true);
    const accepted = this._native.accept(protocol, extra);
    const connection = new WebSocketConnection(this._native, this, protocol);
    if (!accepted) process.nextTick(() => connection.drop(1006, 'TCP connection lost before handshake completed.', true));
    this.emit('requestAccepted', connection);
    return connection;
  }

  reject(status, reason, extraHeaders) {
    this._verifyResolution();
    this._resolved = true;
    this.emit('requestResolved', this);
    if (typeof status !== 'number') status = 403;
    const headers = [];
    if (reason) headers.push('X-WebSocket-Reject-Reason', String(reason).replace(/[\r\n]/g, ''));
    for (const [name, value] of Object.entries(extraHeaders || {})) headers.push(name, String(value).replace(/[\r\n]/g, ''));
    this._native.reject(status, undefined, headers);
    this.emit('requestRejected', this);
  }
}

const DEFAULTS = {
  httpServer: null, maxReceivedFrameSize: 0x10000, maxReceivedMessageSize: 0x100000, fragmentOutgoingMessages: true,
  fragmentationThreshold: 0x4000, keepalive: true, keepaliveInterval: 20000, dropConnectionOnKeepaliveTimeout: true,
  keepaliveGracePeriod: 10000, useNativeKeepalive: false, assembleFragments: true, autoAcceptConnections: false,
  ignoreXForwardedFor: false, parseCookies: true, parseExtensions: true, disableNagleAlgorithm: true, closeTimeout: 5000,
};

class WebSocketServer extends EventEmitter {
  constructor(config) {
    super();
    this.connections = [];
    this.pendingRequests = [];
    this._onUpgradeEvent = (req, socket, head) => this.handleUpgrade(req, socket, head);
    if (config) this.mount(config);
  }

  mount(config) {
    this.config = { ...DEFAULTS, ...config };
    if (!this.config.httpServer) throw new Error('You must specify an httpServer on which to mount the WebSocket server.');
    if (!Array.isArray(this.config.httpServer)) this.config.httpServer = [this.config.httpServer];
    if (!this._native) {
      this._native = native.NativeServer.detached({
        address: '::', port: 0, maxPayload: this.config.maxReceivedMessageSize, closeTimeout: this.config.closeTimeout,
        noDelay: this.config.disableNagleAlgorithm, autoPong: false, badVersionStatus: 426,
        backplane: backplaneOptions(this.config.backplane),
        ...limitOptions(this.config),
        maxBackpressure: this.config.maxBackpressure, closeOnBackpressureLimit: this.config.closeOnBackpressureLimit,
        maxFrame: this.config.maxReceivedFrameSize,
        tcpKeepalive: this.config.keepalive && this.config.useNativeKeepalive ? this.config.keepaliveInterval : undefined,
        fragmentThreshold: this.config.fragmentOutgoingMessages ? this.config.fragmentationThreshold : undefined,
        // Keepalive pings and the grace-period drop run on each connection's native task, not in JS timers.
        keepaliveInterval: this.config.keepalive && !this.config.useNativeKeepalive ? this.config.keepaliveInterval : undefined,
        keepaliveGrace: this.config.keepalive && !this.config.useNativeKeepalive && this.config.dropConnectionOnKeepaliveTimeout
          ? this.config.keepaliveGracePeriod : undefined,
      });
      register(this._native.slot, this);
      this._handovers = new Handovers(this._native);
    }
    for (const server of this.config.httpServer) server.on('upgrade', this._onUpgradeEvent);
  }

  /** Stops taking upgrades; open connections stay. The native server is released (a new mount makes another). */
  unmount() {
    for (const server of this.config.httpServer) server.removeListener('upgrade', this._onUpgradeEvent);
    if (this._native) {
      this._native.stopListening();
      this._native = null;
    }
  }

  closeAllConnections() {
    for (const connection of this.connections) connection.close();
    for (const request of this.pendingRequests) process.nextTick(() => request.reject(503));
  }

  broadcast(data) {
    if (Buffer.isBuffer(data)) this.broadcastBytes(data);
    else if (typeof data.toString === 'function') this.broadcastUTF(data);
  }

  /** One native broadcast (the frame built once for every connection), on every process of a backplane. */
  broadcastUTF(utfData) { if (this._native) this._native.broadcast(utfData.toString()); }
  broadcastBytes(binaryData) { if (this._native) this._native.broadcast(binaryData); }

  shutDown() {
    this.unmount();
    this.closeAllConnections();
  }

  handleUpgrade(request, socket, head = Buffer.alloc(0)) {
    // The checks WebSocket-Node makes before a request exists, so that 'upgradeError' sees the same errors.
    const headers = request.headers;
    const version = Number(headers['sec-websocket-version']);
    let problem;
    if (!headers.host) problem = [400, 'Client must provide a Host header.'];
    else if (!headers['sec-websocket-key']) problem = [400, 'Client must provide a value for Sec-WebSocket-Key.'];
    else if (!headers['sec-websocket-version']) problem = [400, 'Client must provide a value for Sec-WebSocket-Version.'];
    else if (version !== 8 && version !== 13) problem = [426, `Unsupported websocket client version: ${headers['sec-websocket-version']}Only versions 8 and 13 are supported.`, ['Sec-WebSocket-Version', '13, 8']];
    if (problem) {
      // WebSocket-Node's answer: the reason in a header, no body.
      socket.end(native.errorResponse(problem[0], '', ['X-WebSocket-Reject-Reason', problem[1], ...(problem[2] || [])]));
      const err = new Error(problem[1]);
      err.httpCode = problem[0];
      this.emit('upgradeError', err);
      return;
    }
    try {
      this._handovers.hand(request, socket, head, request);
    } catch (err) {
      socket.destroy();
      this.emit('upgradeError', err);
    }
  }

  _onUpgrade(nativeConn) {
    const hs = nativeConn.handshake();
    const httpRequest = this._handovers.claim(hs);
    const request = new WebSocketRequest(this, nativeConn, httpRequest, hs);
    this.pendingRequests.push(request);
    request.once('requestResolved', () => {
      const i = this.pendingRequests.indexOf(request);
      if (i !== -1) this.pendingRequests.splice(i, 1);
    });
    request.once('requestAccepted', (connection) => {
      connection.once('close', (reasonCode, description) => {
        const i = this.connections.indexOf(connection);
        if (i !== -1) this.connections.splice(i, 1);
        this.emit('close', connection, reasonCode, description);
      });
      this.connections.push(connection);
      this.emit('connect', connection);
    });
    if (!this.config.autoAcceptConnections && this.listenerCount('request') > 0) this.emit('request', request);
    else if (this.config.autoAcceptConnections) request.accept(request.requestedProtocols[0], request.origin);
    else request.reject(404, 'No handler is configured to accept the connection.');
  }

  _onServerClose() {}
}

/** WebSocket-Node's router: requests go to the handler mounted for their path and protocol. */
class WebSocketRouter extends EventEmitter {
  constructor(config) {
    super();
    this.handlers = [];
    this._onRequest = (request) => this.handleRequest(request);
    if (config && config.server) this.attachServer(config.server);
  }

  attachServer(server) {
    if (!server) throw new Error('You must specify a WebSocketServer instance to attach to.');
    this.server = server;
    server.on('request', this._onRequest);
  }

  detachServer() {
    if (!this.server) throw new Error('Cannot detach from server: not attached.');
    this.server.removeListener('request', this._onRequest);
    this.server = null;
  }

  mount(path, protocol, callback) {
    if (!path) throw new Error('You must specify a path for this handler.');
    if (typeof protocol === 'function') [callback, protocol] = [protocol, '____no_protocol____'];
    if (!protocol) protocol = '____no_protocol____';
    if (!callback) throw new Error('You must specify a callback for this handler.');
    const pathRegex = path instanceof RegExp ? path : new RegExp(`^${path.replace(/[-[\]{}()*+?.,\\^$|#\s]/g, '\\$&')}$`);
    protocol = protocol.toLocaleLowerCase();
    if (this.handlers.some((h) => h.pathString === pathRegex.toString() && h.protocol === protocol)) {
      throw new Error('You may only mount one handler per path/protocol combination.');
    }
    this.handlers.push({ path: pathRegex, pathString: pathRegex.toString(), protocol, callback });
  }

  unmount(path, protocol) {
    const pathString = (path instanceof RegExp ? path : new RegExp(`^${path.replace(/[-[\]{}()*+?.,\\^$|#\s]/g, '\\$&')}$`)).toString();
    protocol = (protocol || '____no_protocol____').toLocaleLowerCase();
    const i = this.handlers.findIndex((h) => h.pathString === pathString && h.protocol === protocol);
    if (i === -1) throw new Error('Unable to find a route matching the specified path and protocol.');
    this.handlers.splice(i, 1);
  }

  handleRequest(request) {
    const protocols = request.requestedProtocols.length ? request.requestedProtocols : ['____no_protocol____'];
    for (const protocol of protocols) {
      for (const handler of this.handlers) {
        if (handler.path.test(request.resourceURL.pathname) && (protocol === handler.protocol || handler.protocol === '*')) {
          const routed = Object.create(request);
          routed.protocol = protocol === '____no_protocol____' ? null : protocol;
          routed.accept = (origin, cookies) => request.accept(routed.protocol, origin, cookies);
          routed.reject = (status, reason, headers) => request.reject(status, reason, headers);
          handler.callback(routed);
          return;
        }
      }
    }
    request.reject(404, 'No handler is available for the given request.');
  }
}

// Additions to WebSocket-Node's API: topics (connection.subscribe/unsubscribe/topics, server.publish) and the
// cross-process backplane (the `backplane` config and 'backplane' event); broadcastUTF/Bytes span it.
addConnectionTopics(WebSocketConnection.prototype);
addServerTopics(WebSocketServer.prototype, emitBackplane, { broadcast: false });
addOperations(WebSocketServer.prototype);
// drain() stops taking upgrades from the HTTP servers first.
WebSocketServer.prototype._beforeDrain = function beforeDrain() {
  for (const server of this.config.httpServer) server.removeListener('upgrade', this._onUpgradeEvent);
};

const clientOnly = (name) => ({
  get() { throw new Error(`ferrows/websocket provides the server side of WebSocket-Node only; keep require('websocket').${name} for clients`); },
});

module.exports = Object.defineProperties({
  server: WebSocketServer,
  request: WebSocketRequest,
  connection: WebSocketConnection,
  router: WebSocketRouter,
  version: '1.0.35',
  deprecation: { disableWarnings: false },
}, { client: clientOnly('client'), w3cwebsocket: clientOnly('w3cwebsocket') });
