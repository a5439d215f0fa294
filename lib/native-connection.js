'use strict';
// One native connection as the faces use it: a plain object holding the connection's handle number and its event
// slot, whose methods call the module functions of src/binding/connection.rs. The handle keeps the native
// connection until this object is collected; then the registry below releases it. A wrapped native class would
// cost every connection about 350 bytes more (a napi reference, napi-rs's wrapper, an External and a type tag).
//
// An open connection is held here by its slot, so it cannot be collected before its events end; it joins the
// registry only then (`retire`). A registration costs V8 a 72-byte cell, which idle connections do not pay.

const native = require('./addon.js').loadAddon();

const released = new FinalizationRegistry((id) => native.connectionRelease(id));

/** slot → the connection whose events that slot carries to this thread. */
const open = [];

class NativeConnection {
  /** `handle`: [handle number, event slot], as an upgrade or a posted connection arrives (src/binding/events.rs). */
  constructor(handle) {
    this._id = handle[0];
    /** The slot this connection's events carry. */
    this.slot = handle[1];
    open[this.slot] = this;
  }

  handshake() { return native.connectionHandshake(this._id); }
  get firstProtocol() { return native.connectionFirstProtocol(this._id); }
  post(name, queue) {
    const moved = native.connectionPost(this._id, name, queue);
    // Its events go to the other thread now, the last of them too.
    if (moved) retire(this.slot);
    return moved;
  }
  get remote() { return native.connectionRemote(this._id); }
  get local() { return native.connectionLocal(this._id); }
  accept(protocol, headers) { return native.connectionAccept(this._id, protocol, headers); }
  reject(status, body, headers) { return native.connectionReject(this._id, status, body, headers); }
  send(data) { return native.connectionSend(this._id, data); }
  sendAs(data, binary, options) { return native.connectionSendAs(this._id, data, binary, options); }
  ping(data) { return native.connectionPing(this._id, data); }
  pong(data) { return native.connectionPong(this._id, data); }
  close(code, reason) { return native.connectionClose(this._id, code, reason); }
  terminate() { return native.connectionTerminate(this._id); }
  setPaused(paused) { return native.connectionSetPaused(this._id, paused); }
  setFrames(on) { return native.connectionSetFrames(this._id, on); }
  setControlEvents(on) { return native.connectionSetControlEvents(this._id, on); }
  setNodeBuffers(on) { return native.connectionSetNodeBuffers(this.slot, on); }
  setNoDelay(on) { return native.connectionSetNoDelay(this._id, on); }
  setAggregate(on) { return native.connectionSetAggregate(this._id, on); }
  subscribe(topic) { return native.connectionSubscribe(this._id, topic); }
  unsubscribe(topic) { return native.connectionUnsubscribe(this._id, topic); }
  get topics() { return native.connectionTopics(this._id); }
  get bufferedAmount() { return native.connectionBufferedAmount(this._id); }
  get readyState() { return native.connectionReadyState(this._id); }
}

/** No more events come to this thread for `slot` (it closed, or moved away): its connection's handle is released
 * once the object is collected. */
function retire(slot) {
  const conn = open[slot];
  if (conn === undefined) return;
  open[slot] = undefined;
  released.register(conn, conn._id);
}

/** A connection that arrived with nobody to take it: nothing refers to its handle. */
function releaseUntaken(handle) {
  native.connectionRelease(handle[0]);
}

module.exports = { NativeConnection, retire, releaseUntaken };
