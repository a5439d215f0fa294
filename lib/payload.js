'use strict';

/**
 * Data as the native side sends it: a string (text) or bytes (an ArrayBuffer or any view of one);
 * anything else as its string, as sack and the browser's WebSocket do.
 */
function asPayload(data) {
  if (typeof data === 'string' || ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return data;
  return String(data);
}

module.exports = { asPayload };
