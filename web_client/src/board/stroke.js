// Sending one stroke while it is drawn: one `add` with the first points at once, then
// `append`s of the points gathered meanwhile, every ~20 ms, one op in flight per stroke
// (the server keeps each stroke's points in order). Refused for speed (`rate_limited`),
// the same op is sent again a little later; refused otherwise, the stroke is taken back.

const TICK_MS = 20;
const active = new Set();
let timer = 0;

function tickAll() {
  for (const sender of active) sender.tick();
  if (!active.size) { clearInterval(timer); timer = 0; }
}

export class StrokeSender {
  /**
   * `ctx`: conn, state, limits(), dropLocal(itemId), refused(error, {quiet, resync}).
   * `addOp` is the `add` already applied locally (a copy of the item, first points).
   */
  constructor(ctx, addOp) {
    this.ctx = ctx;
    this.id = addOp.item.id;
    this.buffer = [];
    this.finished = false;
    this.dead = false;
    this.retries = 0;
    this.sentAt = 0;
    this.send(addOp);
    active.add(this);
    if (!timer) timer = setInterval(tickAll, TICK_MS);
  }

  push(points) {
    if (!this.dead) this.buffer.push(...points);
  }

  finish() {
    this.finished = true;
  }

  tick() {
    if (this.dead || this.inFlight) return;
    if (!this.buffer.length) {
      if (this.finished) active.delete(this);
      return;
    }
    // Several strokes at once (fingers, pupils) share the server's ops budget: space them.
    const now = performance.now();
    const rate = this.ctx.limits()?.ops_per_second || 60;
    if (now - this.sentAt < Math.max(TICK_MS, (active.size * 1000) / (0.8 * rate))) return;
    const max = this.ctx.limits()?.points_per_append || 200;
    const points = this.buffer.splice(0, max);
    this.send({ type: 'append', item_id: this.id, points });
  }

  async send(op) {
    this.inFlight = true;
    this.sentAt = performance.now();
    const ack = await this.ctx.conn.submit(op);
    if (ack.ok) { this.inFlight = false; return; }
    const code = ack.error?.code;
    if (code === 'reset') { // a snapshot replaced the board: go on if it has our stroke
      this.inFlight = false;
      if (!this.ctx.state.items.has(this.id)) this.stop();
      return;
    }
    if (code === 'rate_limited' && this.retries < 20) { // the same op again, a little later
      this.retries += 1;
      this.ctx.refused(ack.error, { quiet: true });
      setTimeout(() => { if (this.dead) this.inFlight = false; else this.send(op); },
        250 + Math.random() * 350);
      return;
    }
    this.inFlight = false;
    this.stop();
    // A refused add never reached the board: take it back here. A refused append leaves a
    // shorter stroke on the server: fetch the board again to show exactly that.
    this.ctx.refused(ack.error, { resync: op.type !== 'add' });
    if (op.type === 'add') this.ctx.dropLocal(this.id);
  }

  stop() {
    this.dead = true;
    this.buffer = [];
    active.delete(this);
  }
}
