'use strict';
// The JavaScript end of this thread's event pump (src/binding/pump.rs). Every face registers its servers and
// connections here by slot; one `dispatch` call receives every event that was waiting, as codes
// (slot << KIND_BITS | kind, in a Uint32Array) and payloads at the same indices, and hands each event to its
// target's handler method.

const native = require('./addon.js').loadAddon();
const { NativeConnection, retire, releaseUntaken } = require('./native-connection.js');

// The event kinds, as the native side numbers them (src/binding/events.rs).
const {
  KIND_BITS, KIND_TEXT: TEXT, KIND_BINARY: BINARY, KIND_UPGRADE: UPGRADE, KIND_CLOSED: CLOSED, KIND_DRAIN: DRAIN,
  KIND_PING: PING, KIND_PONG: PONG, KIND_SERVER_CLOSED: SERVER_CLOSED, KIND_REQUEST: REQUEST, KIND_POSTED: POSTED,
  KIND_FAILURE: FAILURE, KIND_TEXT_BYTES: TEXT_BYTES, KIND_BINARY_BYTES: BINARY_BYTES, KIND_OUTPUT: OUTPUT,
  KIND_BRIDGE_END: BRIDGE_END, KIND_BRIDGE_RESUME: BRIDGE_RESUME, KIND_FRAME: FRAME, KIND_BACKPLANE: BACKPLANE, KIND_DRAINED: DRAINED,
} = native;
const KIND_MASK = (1 << KIND_BITS) - 1;

/** slot → the face object that receives that slot's events (a server or a connection). */
const targets = [];

/** The ArrayBuffer that small messages of the current batch share (see SHARED_MAX in pump.rs). */
let shared;

/** A Buffer for a message delivered as bytes: a view of the shared buffer, or its own ArrayBuffer. */
function nodeBuffer(payload) {
  if (typeof payload !== 'number') return Buffer.from(payload);
  const length = payload % 65536;
  // A batch of only empty messages has no shared buffer.
  if (length === 0) return Buffer.alloc(0);
  return Buffer.from(shared, (payload - length) / 65536, length);
}

function rethrow(err) {
  throw err;
}

/** Indices of this batch's events that had no target (see dispatch). */
let undelivered;

function deliver(index, code, payload) {
  const slot = code >>> KIND_BITS;
  const target = targets[slot];
  if (target === undefined) {
    // Posted to another thread during this batch (the native side passes the event on), or dropped by its face.
    (undelivered ??= []).push(index);
    const kind = code & KIND_MASK;
    if (kind === UPGRADE || kind === POSTED) releaseUntaken(payload);
    // Dropped by its face: the connection may still be in use, and is released when collected.
    else if (kind === CLOSED) retire(slot);
    return;
  }
  switch (code & KIND_MASK) {
    case TEXT:
    case BINARY:
      target._onMessage(payload);
      break;
    case TEXT_BYTES:
      target._onText(nodeBuffer(payload));
      break;
    case BINARY_BYTES:
      target._onBinary(nodeBuffer(payload));
      break;
    case FRAME:
      target._onFrame(payload);
      break;
    case OUTPUT:
      target._onOutput(payload);
      break;
    case BRIDGE_END:
      target._onBridgeEnd(payload === 1);
      break;
    case BRIDGE_RESUME:
      target._onBridgeResume();
      break;
    case UPGRADE:
      target._onUpgrade(new NativeConnection(payload));
      break;
    case CLOSED:
      targets[slot] = undefined;
      retire(slot);
      target._onClose(payload[0], payload[1]);
      break;
    case DRAIN:
      target._onDrain();
      break;
    case PING:
      target._onPing(payload);
      break;
    case PONG:
      target._onPong(payload);
      break;
    case REQUEST:
      target._onRequest(payload);
      break;
    case POSTED:
      target._onPosted(new NativeConnection(payload));
      break;
    case FAILURE:
      target._onFailure(payload);
      break;
    case BACKPLANE:
      target._onBackplane(payload);
      break;
    case DRAINED:
      target._onDrained();
      break;
    case SERVER_CLOSED:
      targets[slot] = undefined;
      target._onServerClose();
      break;
  }
}

// A handler that throws must not cost the rest of the batch its events: the error is rethrown on its own tick,
// where it becomes an ordinary uncaught exception. Returns the indices of the events that had no target.
function dispatch(codes, sharedBuffer, ...payloads) {
  shared = sharedBuffer;
  undelivered = undefined;
  const n = codes.length;
  let i = 0;
  while (i < n) {
    try {
      for (; i < n; i++) deliver(i, codes[i], payloads[i]);
    } catch (err) {
      i++;
      process.nextTick(rethrow, err);
    }
  }
  return undelivered;
}

native.startPump(dispatch);

/** Routes the events of `slot` to `target` from now on. */
function register(slot, target) {
  targets[slot] = target;
}

/** Forgets the object of `slot`: its events now go elsewhere (a posted connection's) or nowhere. */
function unregister(slot) {
  targets[slot] = undefined;
}

module.exports = { native, register, unregister };
