// Acknowledged Socket.IO calls: one convention for every connection class (boards,
// attendance, chat). The server answers every reliable event with {ok: true, …} or
// {ok: false, error: {code, message}} (docs/api.md); `ackCall` always resolves to such an
// answer, a lost connection or a silent server included (code `offline`, a French message,
// and `lost: true`: the server may or may not have acted), so callers test `ok` and show
// `error.message`. `orThrow` turns a refusal into the same
// `ApiError` the HTTP helper throws, for code written with try/catch.
import { ApiError } from './api.js';

export const ACK_TIMEOUT_MS = 15_000;

const OFFLINE = 'Hors ligne : réessayez une fois reconnecté·e.';
const SILENT = 'Le serveur ne répond pas. Réessayez dans un instant.';
const EMPTY = { ok: false, error: { code: 'internal', message: 'Réponse vide du serveur.' } };

const offline = (message) => ({ ok: false, lost: true, error: { code: 'offline', message } });

/**
 * Emit `event` with `data` and resolve to the server's ack. While disconnected, Socket.IO
 * keeps the emit and sends it on reconnection (`whenOffline: 'wait'`, the default) within
 * `timeoutMs`; `whenOffline: 'refuse'` answers `offline` at once instead (for what the
 * person should retry knowingly, such as a message typed while offline).
 */
export function ackCall(socket, event, data, { timeoutMs = ACK_TIMEOUT_MS, whenOffline = 'wait' } = {}) {
  if (whenOffline === 'refuse' && !socket.connected) return Promise.resolve(offline(OFFLINE));
  return new Promise((resolve) => {
    socket.timeout(timeoutMs).emit(event, data, (err, ack) => {
      if (err) resolve(offline(socket.connected ? SILENT : OFFLINE));
      else resolve(ack ?? EMPTY);
    });
  });
}

/** The ack itself when it says `ok`; otherwise an `ApiError` with the server's message. */
export function orThrow(ack) {
  if (ack?.ok) return ack;
  throw new ApiError(0, ack?.error?.code ?? 'internal', ack?.error?.message ?? 'Erreur inconnue.');
}
