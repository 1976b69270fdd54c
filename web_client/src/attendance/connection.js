// The /attendance connection: every call is acknowledged ({ok, …} or {ok: false, error}),
// and a refusal becomes an Error carrying the server's French message.
import { io } from 'socket.io-client';

export class AttendanceConnection {
  constructor(status) {
    this.status = status;
    this.socket = io('/attendance', { transports: ['websocket'] });
    this.socket.on('connect', () => { status?.set('online'); this.onConnect?.(); });
    this.socket.on('disconnect', () => status?.set('reconnecting'));
    this.socket.on('connect_error', (err) => {
      status?.set(this.socket.active ? 'reconnecting' : 'offline', err?.message);
    });
  }

  on(event, handler) { this.socket.on(event, handler); return this; }

  async call(event, data = {}) {
    const ack = await this.socket.timeout(10_000).emitWithAck(event, data)
      .catch(() => ({ ok: false, error: { message: 'Le serveur ne répond pas. Réessayez.' } }));
    if (!ack?.ok) {
      const err = new Error(ack?.error?.message ?? 'Erreur inconnue.');
      err.code = ack?.error?.code;
      throw err;
    }
    return ack;
  }

  close() {
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}

/** GET/POST JSON on the attendance API with the session cookie. */
export async function apiJson(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const err = new Error(data?.error?.message ?? `Erreur du serveur (${response.status}).`);
    err.status = response.status;
    throw err;
  }
  return data;
}

export const MARKS = {
  present: 'Présent·e',
  absent: 'Absent·e',
  late: 'En retard',
  left_early: 'Départ anticipé',
  exempted: 'Dispensé·e',
};

export const ROLL_STATES = { todo: 'Non fait', in_progress: 'En cours', done: 'Validé' };
