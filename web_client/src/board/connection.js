// The board's live link (Socket.IO namespace /boards, docs/boards.md).
//
// Ops are applied strictly in seq order: one already applied (seq ≤ last) is ignored, a gap
// makes us join again with `since`. Our own ops are drawn at once (optimistic) and kept in
// `pending` until the server echoes them back: the echo is recognised (by its seq from the
// ack, or by its shape before the ack) and not applied twice. After a cut, we join again with
// the last epoch/seq we have, apply the ops we missed (or the snapshot), then resend what the
// server never received.
import { io } from 'socket.io-client';

import { ackCall } from '../ack.js';
import { retryIfUnavailable } from '../retry.js';

const RESET = { ok: false, error: { code: 'reset', message: '' } };

const authorId = (author) => (author && typeof author === 'object' ? author.id : author);

/** Whether the echo `b` is our pending op `a` (the server may normalise numbers or fields). */
function sameOp(a, b) {
  if (a.type !== b?.type) return false;
  switch (a.type) {
    case 'add': return a.item.id === b.item?.id;
    case 'append': return a.item_id === b.item_id && a.points.length === b.points?.length;
    case 'update': return a.item_id === b.item_id;
    case 'update_many': return a.updates.length === b.updates?.length
      && a.updates.every((u, i) => u.item_id === b.updates[i]?.item_id);
    case 'move':
    case 'remove': return String(a.item_ids) === String(b.item_ids);
    case 'clear':
    case 'remove_page':
    case 'move_page': return a.page_id === b.page_id;
    case 'add_page': return a.page.id === b.page?.id;
    default: return false;
  }
}

export class BoardConnection {
  /**
   * `handlers`: joined(answer, {snapshot}), op(op, {author, seq}), own(op), pen(pen),
   * state(state), view(view), pointer(msg), status(state, detail), refused(error), fatal(error).
   * `noop` ops (an op that lost a race) only advance `seq`; `control` ops (pen and state, in
   * seq order) go to `op` like the others; a `reset` event (history lost) means a fresh join.
   */
  constructor(boardId, handlers) {
    this.boardId = boardId;
    this.on = handlers;
    this.epoch = null;
    this.seq = 0;
    this.me = null;
    // Our ops not yet echoed: {op, seq, sent (ever), waiting (an ack may still come),
    // settled, resolve}.
    this.pending = [];
    this.buffer = []; // ops received out of order or while joining
    this.ready = false;
    this.joining = false;
    this.joinToken = 0;
    this.joins = [];
    this.needSnapshot = false;
    this.rejoinWanted = false;
    this.closed = false;
    this.socket = io('/boards', {
      transports: ['websocket'],
      forceNew: true, // our own connection: the page's status socket may come and go
      // With several server processes, the board's connections gather on one of them
      // (realtime/placement.py): fewer processes hear each op.
      query: { board: String(boardId) },
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
    });
    this.wire();
    this.onOffline = () => this.networkLost();
    this.onOnline = () => this.networkBack();
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
  }

  wire() {
    const s = this.socket;
    s.on('connect', () => this.join());
    s.on('disconnect', (reason) => {
      this.ready = false;
      this.joining = false;
      if (this.closed) return;
      if (reason === 'io client disconnect' && navigator.onLine) this.on.status('offline');
      else this.on.status('reconnecting');
      if (reason === 'io server disconnect') { // a restart: come back, spread out
        setTimeout(() => { if (!this.closed && navigator.onLine) s.connect(); },
          1000 + Math.random() * 3000);
      }
    });
    s.io.on('reconnect_attempt', () => this.on.status('reconnecting'));
    s.on('connect_error', (err) => {
      if (s.active || retryIfUnavailable(s, err, () => !this.closed && navigator.onLine)) {
        this.on.status('reconnecting');
        return;
      }
      this.on.status('offline', err?.data?.message ?? err?.message);
      this.on.refused?.(err?.data ?? err);
    });
    const mine = (fn) => (msg) => { if (msg?.board_id === this.boardId) fn(msg); };
    // Ops come in batches, one frame per board per server tick (`batch_ms`), in seq order.
    s.on('ops', mine((msg) => { for (const op of msg.ops) this.received(op); }));
    s.on('pen', mine((msg) => this.on.pen(msg.pen)));
    s.on('state', mine((msg) => this.on.state(msg.state)));
    s.on('view', mine((msg) => this.on.view(msg)));
    s.on('pointer', mine((msg) => this.on.pointer(msg)));
    s.on('import', mine((msg) => this.on.importProgress?.(msg))); // pages being imported
    s.on('instrument', mine((msg) => this.on.instrument?.(msg))); // the teacher's ruler…
    s.on('reset', mine(() => this.resync())); // the server lost the history: start afresh
  }

  /** The browser says the network is gone: do not wait for a timeout, show it now. */
  networkLost() {
    if (this.closed) return;
    this.on.status('reconnecting');
    this.socket.disconnect();
  }

  networkBack() {
    if (!this.closed && !this.socket.connected) this.socket.connect();
  }

  close() {
    this.closed = true;
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
    if (this.ready) this.socket.emit('leave', { board_id: this.boardId });
    this.socket.removeAllListeners();
    this.socket.io.removeAllListeners();
    this.socket.disconnect();
  }

  /** Send and wait for the ack; a lost connection or a timeout answers an `offline` error. */
  request(event, payload) {
    return ackCall(this.socket, event, payload);
  }

  async join() {
    if (this.closed) return;
    const token = ++this.joinToken;
    this.joining = true;
    this.ready = false;
    this.rejoinWanted = false;
    this.on.status('joining');
    const payload = { board_id: this.boardId };
    if (this.epoch !== null && !this.needSnapshot) {
      payload.since = { epoch: this.epoch, seq: this.seq };
    }
    const answer = await this.request('join', payload);
    if (this.closed || token !== this.joinToken) return; // a newer join is under way
    this.joining = false;
    if (!answer.ok) {
      if (answer.error?.code !== 'offline') this.on.fatal(answer.error);
      return; // offline: the reconnection joins again
    }
    this.me = answer.me;
    this.joins.push({ since: payload.since ?? null, snapshot: Boolean(answer.snapshot),
      ops: answer.ops?.length ?? 0 }); // what each join brought (tests, debugging)
    if (answer.snapshot) this.loadSnapshot(answer);
    else this.catchUp(answer);
    if (this.rejoinWanted || this.needSnapshot) { this.join(); return; }
    this.ready = true;
    this.on.joined(answer, { snapshot: Boolean(answer.snapshot) });
    this.on.status('online');
    this.flushBuffer();
    if (!this.ready) return;
    // Send what never left, and what was lost on the way (neither acked nor in `ops`);
    // an op still waiting for its ack on this connection is left alone.
    for (const entry of this.pending) if (entry.seq === null && !entry.waiting) this.transmit(entry);
  }

  loadSnapshot(answer) {
    this.needSnapshot = false;
    this.epoch = answer.epoch;
    this.seq = answer.seq;
    this.buffer = this.buffer.filter((m) => m.seq > this.seq);
    const pending = this.pending;
    this.pending = [];
    for (const entry of pending) this.settle(entry, RESET); // the snapshot is the truth now
  }

  catchUp(answer) {
    if (answer.epoch !== undefined && answer.epoch !== this.epoch) {
      this.epoch = answer.epoch; // a new history: should come with a snapshot, but be safe
    }
    const ops = [...(answer.ops ?? []), ...this.buffer].sort((a, b) => a.seq - b.seq);
    this.buffer = [];
    for (const msg of ops) {
      if (msg.seq <= this.seq) continue;
      if (msg.seq !== this.seq + 1) { this.buffer.push(msg); continue; }
      this.accept(msg);
    }
    if (answer.seq > this.seq) this.wantSnapshot(); // the answer did not reach its own seq
  }

  /** Forget what we have and ask for the whole board (our history no longer matches). */
  wantSnapshot() {
    this.needSnapshot = true;
    this.rejoinWanted = true;
  }

  rejoin() {
    if (!this.socket.connected || this.closed) return;
    if (this.joining) { this.rejoinWanted = true; return; }
    this.join();
  }

  /** Ask for everything again (after a refused op: undo what we drew optimistically). */
  resync() {
    this.wantSnapshot();
    this.rejoin();
  }

  received(msg) {
    if (!this.ready) { this.buffer.push(msg); return; }
    if (msg.seq <= this.seq) return;
    if (msg.seq !== this.seq + 1) { // a gap: fetch what we missed
      this.buffer.push(msg);
      this.rejoin();
      return;
    }
    this.accept(msg);
    this.flushBuffer();
  }

  flushBuffer() {
    this.buffer.sort((a, b) => a.seq - b.seq);
    while (this.buffer.length) {
      const msg = this.buffer[0];
      if (msg.seq <= this.seq) { this.buffer.shift(); continue; }
      if (msg.seq !== this.seq + 1) { this.rejoin(); return; }
      this.buffer.shift();
      this.accept(msg);
    }
  }

  /** One op, next in seq order: ours (already drawn) or someone else's (apply it). */
  accept(msg) {
    this.seq = msg.seq;
    const author = authorId(msg.author);
    let i = this.pending.findIndex((e) => e.seq === msg.seq);
    if (i < 0 && this.me && String(author) === String(this.me.id)) {
      i = this.pending.findIndex((e) => e.seq === null && e.sent && sameOp(e.op, msg.op));
    }
    if (i >= 0) {
      const [entry] = this.pending.splice(i, 1);
      this.settle(entry, { ok: true, seq: msg.seq });
      if (msg.op?.type === 'noop') this.resync(); // ours, but it came too late to apply
      else this.on.own?.(msg.op); // server-filled fields (author, z) for what we drew
      return;
    }
    this.on.op(msg.op, { author, seq: msg.seq });
  }

  settle(entry, ack) {
    if (entry.settled) return;
    entry.settled = true;
    entry.resolve(ack);
  }

  /**
   * Send an op we have already applied locally. Resolves with the ack ({ok, seq} or
   * {ok: false, error}); `reset` when a snapshot replaced the board meanwhile.
   */
  submit(op) {
    const entry = { op, seq: null, sent: false, waiting: false, settled: false, attempt: 0 };
    const done = new Promise((resolve) => { entry.resolve = resolve; });
    this.pending.push(entry);
    if (this.ready) this.transmit(entry);
    return done;
  }

  transmit(entry) {
    entry.sent = true;
    entry.waiting = true;
    const attempt = ++entry.attempt;
    ackCall(this.socket, 'op', { board_id: this.boardId, op: entry.op }).then((ack) => {
      if (entry.attempt !== attempt) return;
      entry.waiting = false;
      if (!this.pending.includes(entry)) return;
      if (ack.lost) { // fate unknown: joining again tells us (its ops, or we send it again)
        if (this.socket.connected) this.rejoin();
        return;
      }
      if (ack.ok) {
        entry.seq = ack.seq;
        this.settle(entry, ack);
        if (ack.seq <= this.seq) { // its echo came and did not look like ours
          this.pending.splice(this.pending.indexOf(entry), 1);
          this.resync();
        }
        return;
      }
      this.pending.splice(this.pending.indexOf(entry), 1);
      this.settle(entry, ack);
    });
  }

  /**
   * Volatile traffic (pointer, view): never stored, nothing to wait for, dropped while we are
   * not joined. Not `socket.volatile`, which also drops it whenever the websocket is busy
   * sending an op: the teacher's page change would then get lost.
   */
  volatile(event, payload) {
    if (this.ready && this.socket.connected) {
      this.socket.emit(event, { board_id: this.boardId, ...payload });
    }
  }

  /** A reliable control (undo, redo, grant, lock, end): its ack. */
  control(event, payload = {}) {
    if (!this.ready) {
      return Promise.resolve({ ok: false, error: { code: 'offline',
        message: 'Hors ligne : réessayez une fois reconnecté·e.' } });
    }
    return this.request(event, { board_id: this.boardId, ...payload });
  }
}
