// The board session's chat panel: pupils ask questions, the teacher answers, deletes a
// message or closes the questions (namespace /chat, `live_join` with the board id).
// A drawer that stays closed until opened, with the count of new questions on its button.
// The button takes its place in the board's page bar like any other control; the open panel
// lies over `area` (the drawing area), at its bottom right and never beyond it, so that it
// hides neither the top bar, the toolbar nor the page bar, whatever the screen.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { ChatConnection } from '../chat/connection.js';
import { createThread } from '../chat/thread.js';
import { icon } from './icons.js';

export function boardChat(boardId, { tz = 'Europe/Paris', area = null } = {}) {
  const badge = h('span', { class: 'badge', hidden: true });
  const notice = h('p', { class: 'chat-notice', role: 'status', 'aria-live': 'polite' });
  const body = h('div', { class: 'board-chat-body' }, h('p', { class: 'muted' }, 'Connexion…'));
  const toggle = h('summary', { class: 'btn tool chat-toggle' }, icon('chat'), 'Questions ', badge);
  const panel = h('div', { class: 'board-chat-panel' }, notice, body);
  const el = h('details', { class: 'board-chat' }, toggle, panel);
  let thread = null;
  let unseen = 0;
  let limits = {};
  const say = (text) => { notice.textContent = text; setTimeout(() => { if (notice.textContent === text) notice.textContent = ''; }, 6000); };
  const seen = () => { unseen = 0; badge.hidden = true; };

  /** The panel's room: the drawing area's rectangle, as CSS variables (app.css places it). */
  function place() {
    if (!el.open || !area) return;
    const r = area.getBoundingClientRect();
    const { clientWidth, clientHeight } = document.documentElement;
    panel.style.setProperty('--room-right', `${Math.max(0, clientWidth - r.right)}px`);
    panel.style.setProperty('--room-bottom', `${Math.max(0, clientHeight - r.bottom)}px`);
    panel.style.setProperty('--room-width', `${r.width}px`);
    panel.style.setProperty('--room-height', `${r.height}px`);
  }
  const resized = area && typeof ResizeObserver === 'function' ? new ResizeObserver(place) : null;
  resized?.observe(area);
  window.addEventListener('resize', place);
  el.addEventListener('toggle', () => {
    if (el.open) { seen(); place(); }
  });
  el.addEventListener('keydown', (e) => { // Escape closes the panel, back on its button
    if (e.key !== 'Escape' || !el.open) return;
    e.preventDefault();
    el.open = false;
    toggle.focus();
  });

  const conn = new ChatConnection({
    async welcome(data) {
      limits = data.limits;
      if (!thread) await join(data.me);
    },
    event(ev) {
      thread?.apply(ev);
      if (ev.kind === 'message' && !el.open && ev.message?.author_id !== thread?.me?.id) {
        unseen += 1;
        badge.hidden = false;
        badge.textContent = String(unseen);
      }
    },
    reset() { thread = null; join(); },
    typing(t) { if (t.conversation_id === thread?.conv?.id) thread.typing(t); },
  });

  async function join(me) {
    const who = me ?? (await api.me().then((m) => m.user, () => null));
    if (!who) return;
    const answer = await conn.call('live_join', { board_id: boardId });
    if (!answer.ok) { replace(body, h('p', { class: 'muted' }, answer.error.message)); return; }
    thread = createThread({ conn, me: { id: who.id, role: who.role }, tz, limits, live: true, onError: say });
    thread.me = who;
    thread.load(answer.conversation, answer);
    conn.follow(answer.conversation.id, answer.head);
    conn.sync(answer.conversation.id);
    replace(body, thread.el);
  }

  return {
    el,
    close() {
      resized?.disconnect();
      window.removeEventListener('resize', place);
      thread?.destroy();
      conn.close();
    },
  };
}
