// The /attendance connection: every call is acknowledged ({ok, …} or {ok: false, error}),
// and a refusal becomes an ApiError carrying the server's French message (src/ack.js).
import { io } from 'socket.io-client';

import { ackCall, orThrow } from '../ack.js';
import { retryIfUnavailable } from '../retry.js';

// The HTTP helper is the app's one (src/api.js), named here too for the attendance pages.
export { apiJson } from '../api.js';

export class AttendanceConnection {
  constructor(status) {
    this.status = status;
    this.socket = io('/attendance', { transports: ['websocket'] });
    this.socket.on('connect', () => { status?.set('online'); this.onConnect?.(); });
    this.socket.on('disconnect', () => status?.set('reconnecting'));
    this.socket.on('connect_error', (err) => {
      const again = this.socket.active || retryIfUnavailable(this.socket, err);
      status?.set(again ? 'reconnecting' : 'offline', err?.message);
    });
  }

  on(event, handler) { this.socket.on(event, handler); return this; }

  async call(event, data = {}) {
    return orThrow(await ackCall(this.socket, event, data));
  }

  close() {
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}

export const MARKS = {
  present: 'Présent·e',
  absent: 'Absent·e',
  late: 'En retard',
  left_early: 'Départ anticipé',
  exempted: 'Dispensé·e',
};

export const ROLL_STATES = { todo: 'Non fait', in_progress: 'En cours', done: 'Validé' };
