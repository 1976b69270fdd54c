// The live connection (Socket.IO, websocket only) and its status indicator.
import { io } from 'socket.io-client';
import { h } from './dom.js';
import { retryIfUnavailable } from './retry.js';

const LABELS = {
  connecting: 'Connexion…',
  online: 'En ligne',
  offline: 'Hors ligne',
  reconnecting: 'Reconnexion…',
};

let socket = null;

/** A small status line, announced politely to screen readers when it changes. */
export function liveStatus() {
  const text = h('span', { class: 'live-text' }, LABELS.connecting);
  const el = h('p', { class: 'live', 'data-state': 'connecting', role: 'status',
    'aria-live': 'polite' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), text);
  el.set = (state, detail) => {
    if (el.dataset.state === state) return;
    el.dataset.state = state;
    text.textContent = LABELS[state];
    if (detail) el.title = detail; else el.removeAttribute('title');
  };
  return el;
}

/**
 * Connect on the default namespace; the HttpOnly session cookie authenticates us.
 * `onRefused(error)` runs when the server turns the connection down (e.g. session expired).
 */
export function connect(status, { onSession, onRefused } = {}) {
  disconnect();
  const s = io({ transports: ['websocket'] });
  socket = s;
  s.on('connect', () => status.set('online'));
  s.on('session', (payload) => onSession?.(payload?.user));
  s.on('disconnect', (reason) => {
    if (reason === 'io server disconnect') {
      // The server closed us on purpose (a restart): come back, spread out over a few seconds.
      status.set('reconnecting');
      setTimeout(() => { if (socket === s) s.connect(); }, 1000 + Math.random() * 3000);
    } else {
      status.set(s.active ? 'reconnecting' : 'offline');
    }
  });
  s.on('server_shutdown', (payload) => status.set('reconnecting', payload?.message));
  // The session ended elsewhere (logout in another tab, new code, account disabled): back to
  // the login page at once rather than after a refused reconnection.
  s.on('session_ended', (payload) => {
    status.set('offline', payload?.message);
    onRefused?.({ code: 'unauthorized', message: payload?.message });
  });
  s.io.on('reconnect_attempt', () => status.set('reconnecting'));
  s.on('connect_error', (err) => {
    if (s.active || retryIfUnavailable(s, err, () => socket === s)) {
      status.set('reconnecting');
    } else {
      status.set('offline', err?.data?.message ?? err?.message);
      onRefused?.(err?.data ?? err);
    }
  });
  return s;
}

export function disconnect() {
  if (socket) {
    socket.removeAllListeners();
    socket.io.removeAllListeners();
    socket.disconnect();
    socket = null;
  }
}
