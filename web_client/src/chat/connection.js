// The messaging link (Socket.IO namespace /chat, docs/chat.md).
//
// Each conversation is a stream with a gap-free `seq`. For the conversations we follow
// (`follow(id, seq)`), events are applied strictly in order: an old one is ignored, a gap
// asks the server for what was missed (`sync` with `since`). After a reconnection every
// followed conversation is synced the same way, so nothing is lost and nothing doubled.
import { io } from 'socket.io-client';

import { ackCall } from '../ack.js';
import { apiUpload } from '../api.js';
import { retryIfUnavailable } from '../retry.js';

export class ChatConnection {
  /**
   * `handlers`: welcome(data), event(ev) (in order, for followed conversations),
   * notice(ev) (any event, e.g. to update the list), reset(id) (reload the thread),
   * receipt(r), typing(t), conversation(summary), acked(a), muted(m), report(r),
   * report_handled(r), report_outcome(o) (to a reporter: the CPE handled it), status(state).
   */
  constructor(handlers) {
    this.on = handlers;
    this.heads = new Map(); // followed conversation id → last seq applied
    this.syncing = new Set();
    this.socket = io('/chat', {
      transports: ['websocket'], forceNew: true, reconnectionDelay: 500, reconnectionDelayMax: 4000,
    });
    const s = this.socket;
    s.on('connect', () => this.on.status?.('online'));
    s.on('disconnect', () => this.on.status?.('reconnecting'));
    s.on('connect_error', (err) => this.on.status?.(
      s.active || retryIfUnavailable(s, err) ? 'reconnecting' : 'offline', err));
    s.on('welcome', (data) => {
      this.on.welcome?.(data);
      for (const id of this.heads.keys()) this.sync(id);
    });
    s.on('event', (ev) => this.receive(ev));
    for (const name of ['receipt', 'typing', 'conversation', 'acked', 'muted', 'report', 'report_handled',
      'report_outcome']) {
      s.on(name, (data) => this.on[name]?.(data));
    }
  }

  /**
   * Ask and wait for the acknowledgement ({ok, …} or {ok: false, error}); offline, the
   * answer is at once `offline` (a message typed meanwhile stays in its box, to send again).
   */
  call(event, data) {
    return ackCall(this.socket, event, data, { whenOffline: 'refuse' });
  }

  follow(id, seq) { this.heads.set(id, seq); }

  unfollow(id) { this.heads.delete(id); }

  receive(ev) {
    this.on.notice?.(ev);
    const last = this.heads.get(ev.conversation_id);
    if (last === undefined || ev.seq <= last) return;
    if (ev.seq === last + 1) {
      this.heads.set(ev.conversation_id, ev.seq);
      this.on.event?.(ev);
    } else {
      this.sync(ev.conversation_id);
    }
  }

  async sync(id) {
    if (this.syncing.has(id)) return;
    this.syncing.add(id);
    try {
      const since = this.heads.get(id);
      if (since === undefined) return;
      const answer = await this.call('sync', { conversation_id: id, since });
      if (!answer.ok) return;
      if (answer.reset) { this.on.reset?.(id); return; }
      for (const ev of answer.events) {
        if (ev.seq === (this.heads.get(id) ?? 0) + 1) {
          this.heads.set(id, ev.seq);
          this.on.event?.(ev);
        }
      }
    } finally {
      this.syncing.delete(id);
    }
  }

  typing(id) { if (this.socket.connected) this.socket.emit('typing', { conversation_id: id }); }

  close() {
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}

/** Upload one file (raw body); resolves to {id, name, mime, size, url} or throws ApiError. */
export function uploadFile(file) {
  return apiUpload(`/api/chat/attachments?name=${encodeURIComponent(file.name)}`, file,
    'application/octet-stream');
}

const TIME = new Map();
/** "14:05" today, "lun. 3 nov., 14:05" otherwise, in the school's time zone. */
export function when(ts, timeZone) {
  const d = new Date(ts * 1000);
  const sameDay = d.toDateString() === new Date().toDateString();
  const key = `${timeZone}|${sameDay}`;
  if (!TIME.has(key)) {
    TIME.set(key, new Intl.DateTimeFormat('fr-FR', sameDay
      ? { hour: '2-digit', minute: '2-digit', timeZone }
      : { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZone }));
  }
  return TIME.get(key).format(d);
}
