// One conversation on screen: its messages (in seq order), the "older messages" cursor,
// who is typing, and the composer. Used by the messagerie page and the board's chat panel.
import { h, replace } from '../dom.js';
import { uploadFile, when } from './connection.js';
import { andList } from '../french.js';

const TEAM = new Set(['teacher', 'cpe', 'staff']);
const TYPING_SHOWN_MS = 4000;

export function createThread({ conn, me, tz, limits = {}, live = false, onError }) {
  const t = {
    conv: null, names: new Map(), items: new Map(), before: null, typingTimer: null,
    pending: [], lastTyping: 0, online: new Set(),
    read: new Map(), // participant id → how far they have read (seq), live from `receipt`
    openReceipts: new Set(), // my messages whose « Qui l'a lu ? » list is open
  };
  const title = h('h2', { class: 'thread-title', tabindex: '-1' });
  const people = h('p', { class: 'thread-people' });
  const tools = h('div', { class: 'thread-tools' });
  const older = h('button', { type: 'button', class: 'btn btn-light older', hidden: true,
    onclick: loadOlder }, 'Messages plus anciens');
  const list = h('ol', { class: 'messages', 'aria-live': 'polite', 'aria-relevant': 'additions' });
  const typingLine = h('p', { class: 'typing', 'aria-live': 'polite' });
  const closedNote = h('p', { class: 'thread-closed', hidden: true });
  const text = h('textarea', { class: 'compose-text', rows: '2', maxlength: String(limits.body_max ?? 4000),
    'aria-label': live ? 'Votre question' : 'Votre message',
    placeholder: live ? 'Posez votre question…' : 'Écrire un message…',
    onkeydown: (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); } },
    oninput: () => {
      const now = Date.now();
      if (t.conv && now - t.lastTyping > 2000) { t.lastTyping = now; conn.typing(t.conv.id); }
    } });
  const files = h('input', { type: 'file', class: 'visually-hidden', id: `pj-${Math.random().toString(36).slice(2)}`,
    multiple: true, onchange: () => addFiles(files.files) });
  const chips = h('ul', { class: 'attach-chips' });
  const sendBtn = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Envoyer');
  const form = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); send(); } },
    chips,
    h('div', { class: 'composer-row' },
      live ? null : h('label', { class: 'btn btn-light attach', for: files.id, title: 'Joindre un fichier' },
        'Joindre'),
      live ? null : files, text, sendBtn));
  const el = h('section', { class: live ? 'thread thread-live' : 'thread', 'aria-labelledby': 'thread-title' },
    h('header', { class: 'thread-head' }, h('div', {}, title, people), tools),
    older, list, typingLine, closedNote, form);
  title.id = 'thread-title';

  function nameOf(id) { return id === me.id ? 'Moi' : (t.names.get(id) ?? 'Participant'); }

  function load(conv, page) {
    t.conv = conv;
    t.names = new Map(conv.participants.map((p) => [p.id, p.name]));
    t.read = new Map(Object.entries(conv.read ?? {}).map(([k, v]) => [Number(k), v]));
    title.textContent = conv.title || conv.participants.filter((p) => p.id !== me.id)
      .map((p) => p.name).join(', ') || 'Conversation';
    renderPeople();
    t.items.clear();
    replace(list);
    for (const m of page.messages) upsert(m);
    t.before = page.before;
    older.hidden = page.before === null;
    refreshTools();
  }

  // Participants, with « en ligne » beside those who have the conversation open right now
  // (the presence roster of `conversation:<id>`, given by `online(users)`).
  function renderPeople() {
    if (live) { people.textContent = 'Questions de la séance'; return; }
    const parts = [];
    t.conv.participants.forEach((p, i) => {
      if (i) parts.push(' · ');
      const here = p.id !== me.id && t.online.has(p.id);
      parts.push(h('span', { class: here ? 'person is-online' : 'person', 'data-user-id': p.id },
        nameOf(p.id), here ? h('span', { class: 'online-dot', title: 'Consulte la conversation en ce moment' },
          h('span', { class: 'visually-hidden' }, ' (en ligne)')) : null));
    });
    replace(people, ...parts);
  }

  function online(users) {
    t.online = new Set(users.keys());
    if (t.conv) renderPeople();
  }

  function refreshTools() {
    const c = t.conv;
    replace(tools,
      live ? null : h('button', { type: 'button', class: 'btn btn-light', 'aria-pressed': String(Boolean(c.muted)),
        onclick: async () => {
          const answer = await conn.call('mute', { conversation_id: c.id, muted: !c.muted });
          if (answer.ok) { c.muted = !c.muted; refreshTools(); } else onError?.(answer.error.message);
        } }, c.muted ? 'Réactiver les notifications' : 'Mettre en sourdine'),
      c.can_moderate ? h('button', { type: 'button', class: 'btn btn-light', onclick: async () => {
        const answer = await conn.call('set_open', { conversation_id: c.id, open: !c.open });
        if (!answer.ok) onError?.(answer.error.message);
      } }, c.open ? (live ? 'Fermer les questions' : 'Fermer la conversation') : 'Rouvrir') : null);
    const canPost = c.can_post && c.open;
    form.hidden = !canPost;
    closedNote.hidden = canPost;
    closedNote.textContent = !c.open ? 'Conversation fermée.'
      : c.kind === 'information' ? 'Information : pas de réponse, accusez-en réception.'
        : 'Vous ne pouvez pas écrire ici.';
  }

  function messageNode(m) {
    const mine = m.author_id === me.id;
    const gone = m.state === 'deleted' || m.state === 'recalled';
    const ageOk = (Date.now() / 1000 - m.created_at) < (limits.edit_window_s ?? 900);
    const actions = h('div', { class: 'msg-actions' });
    const act = (label, fn, cls = '') => h('button', { type: 'button', class: `btn-link ${cls}`, onclick: fn }, label);
    if (!gone) {
      if (mine && ageOk) {
        actions.append(act('Modifier', () => editInline(m)), act('Supprimer', () => remove(m, 'delete')));
      } else if (t.conv?.can_moderate) {
        actions.append(act('Supprimer', () => remove(m, 'delete')));
      }
      if (mine && TEAM.has(me.role) && !live) actions.append(act('Rappeler', () => remove(m, 'recall')));
      if (!mine) actions.append(act('Signaler', () => report(m)));
      if (t.conv?.kind === 'information') {
        if (mine) {
          const n = Object.keys(m.acks ?? {}).length;
          const total = Math.max(0, (t.conv.participants?.length ?? 1) - 1);
          const who = Object.keys(m.acks ?? {}).map((id) => t.names.get(Number(id)) ?? 'Participant');
          actions.append(h('span', { class: 'ack-count' }, `Accusés de réception : ${n}/${total}`,
            who.length ? h('span', { class: 'ack-names' }, ` — ${andList(who.slice(0, 5))}${who.length > 5 ? '…' : ''}`) : null));
        } else if (m.acks && m.acks[String(me.id)]) {
          actions.append(h('span', { class: 'ack-done' }, '✓ Réception accusée'));
        } else {
          actions.append(h('button', { type: 'button', class: 'btn btn-primary btn-small ack',
            onclick: async () => {
              const answer = await conn.call('ack', { message_id: m.id });
              if (answer.ok) { m.acks = { ...(m.acks ?? {}), [me.id]: answer.at }; upsert(m); }
              else onError?.(answer.error.message);
            } }, 'Accuser réception'));
        }
      }
    }
    const status = mine && !gone && !live ? readStatus(m) : null;
    return h('li', { class: `msg${mine ? ' msg-mine' : ''}${gone ? ' msg-gone' : ''}`,
      dataset: { id: String(m.id), seq: String(m.seq) } },
      h('p', { class: 'msg-meta' }, h('span', { class: 'msg-author' }, m.author_id === me.id ? 'Moi' : (m.author_name ?? nameOf(m.author_id))), ' · ',
        h('time', {}, when(m.created_at, tz)), m.state === 'edited' ? ' · modifié' : ''),
      h('p', { class: 'msg-body' }, m.body),
      m.attachments?.length ? h('ul', { class: 'msg-files' }, m.attachments.map((a) =>
        h('li', {}, h('a', { href: a.url, target: '_blank', rel: 'noopener' },
          `${a.name} (${Math.max(1, Math.round(a.size / 1024))} Kio)`)))) : null,
      actions, status);
  }

  // « Lu » under each of my messages: in a one-to-one conversation « Lu » or « Envoyé »; in a
  // group or an information, who read it by name, and the full list (with times, and who
  // acknowledged an information) on demand from the server (`receipts`).
  function readStatus(m) {
    const others = (t.conv?.participants ?? []).filter((p) => p.id !== me.id);
    const readers = others.filter((p) => (t.read.get(p.id) ?? 0) >= m.seq);
    let text;
    if (t.conv.kind === 'direct') text = readers.length ? 'Lu' : 'Envoyé';
    else if (!readers.length) text = 'Envoyé, pas encore lu';
    else if (readers.length === others.length) text = others.length > 1 ? 'Lu par tous' : 'Lu';
    else {
      const names = readers.map((p) => p.name);
      text = `Lu par ${names.length > 3 ? `${names.slice(0, 3).join(', ')} et ${names.length - 3} autre${names.length > 4 ? 's' : ''}` : andList(names)} (${readers.length}/${others.length})`;
    }
    const line = h('span', { class: readers.length ? 'read-state is-read' : 'read-state' },
      readers.length ? '✓✓ ' : '✓ ', text);
    if (t.conv.kind === 'direct') return h('p', { class: 'msg-status' }, line);
    const list = h('ul', { class: 'receipts-list' }, h('li', { class: 'muted' }, 'Chargement…'));
    const box = h('details', { class: 'receipts', open: t.openReceipts.has(m.id) },
      h('summary', {}, t.conv.kind === 'information' ? 'Qui a lu, qui a accusé réception ?' : 'Qui l’a lu ?'), list);
    box.addEventListener('toggle', () => {
      if (box.open) { t.openReceipts.add(m.id); fillReceipts(m, list); } else t.openReceipts.delete(m.id);
    });
    if (box.open) fillReceipts(m, list);
    return h('div', { class: 'msg-status' }, line, box);
  }

  const longWhen = (ts) => new Intl.DateTimeFormat('fr-FR', { day: 'numeric', month: 'long',
    hour: '2-digit', minute: '2-digit', timeZone: tz }).format(new Date(ts * 1000));

  async function fillReceipts(m, list) {
    const answer = await conn.call('receipts', { message_id: m.id });
    if (!answer.ok) { replace(list, h('li', {}, answer.error.message)); return; }
    replace(list, answer.recipients.map((r) => h('li', { class: r.read ? 'is-read' : '' },
      h('span', { class: 'receipt-name' }, r.name), ' — ',
      r.read ? `lu le ${longWhen(r.read_at ?? m.created_at)}` : 'pas encore lu',
      answer.kind === 'information'
        ? (r.acked_at ? `, réception accusée le ${longWhen(r.acked_at)}` : ', réception pas encore accusée') : '')));
  }

  function receipt(r) {
    if (!t.conv || r.conversation_id !== t.conv.id) return;
    if ((t.read.get(r.user_id) ?? 0) >= r.read_seq) return;
    t.read.set(r.user_id, r.read_seq);
    if (r.user_id === me.id) return;
    for (const { m } of t.items.values()) if (m.author_id === me.id && m.seq <= r.read_seq) upsert(m);
  }

  function upsert(m) {
    const node = messageNode(m);
    const old = t.items.get(m.id);
    t.items.set(m.id, { m, node });
    if (old) { old.node.replaceWith(node); return; }
    const after = [...list.children].find((li) => Number(li.dataset.seq) > m.seq);
    list.insertBefore(node, after ?? null);
  }

  function apply(ev) {
    if (ev.message) upsert(ev.message);
    if (ev.kind === 'closed' || ev.kind === 'reopened') {
      t.conv.open = ev.kind === 'reopened';
      refreshTools();
    }
    if (ev.kind === 'message') {
      typingLine.textContent = '';
      list.lastElementChild?.scrollIntoView?.({ block: 'end' });
    }
  }

  function typing(data) {
    if (data.user_id === me.id) return;
    typingLine.textContent = `${data.name} écrit…`;
    clearTimeout(t.typingTimer);
    t.typingTimer = setTimeout(() => { typingLine.textContent = ''; }, TYPING_SHOWN_MS);
  }

  function acked(data) {
    const item = t.items.get(data.message_id);
    if (item) {
      if (data.name && !t.names.has(data.user_id)) t.names.set(data.user_id, data.name);
      item.m.acks = { ...(item.m.acks ?? {}), [data.user_id]: data.at };
      upsert(item.m);
    }
  }

  async function loadOlder() {
    const answer = await conn.call('history', { conversation_id: t.conv.id, before: t.before });
    if (!answer.ok) { onError?.(answer.error.message); return; }
    for (const m of answer.messages) if (!t.items.has(m.id)) upsert(m);
    t.before = answer.before;
    older.hidden = answer.before === null;
  }

  async function addFiles(fileList) {
    for (const file of fileList) {
      if (limits.attachment_max_bytes && file.size > limits.attachment_max_bytes) {
        onError?.(`« ${file.name} » est trop lourd (${Math.round(limits.attachment_max_bytes / 1048576)} Mio au plus).`);
        continue;
      }
      try {
        const att = await uploadFile(file);
        t.pending.push(att);
        chips.append(h('li', { class: 'chip' }, att.name));
      } catch (err) { onError?.(err.message); }
    }
    files.value = '';
  }

  async function send() {
    const body = text.value.trim();
    if (!body && !t.pending.length) return;
    sendBtn.disabled = true;
    const answer = await conn.call('send', { conversation_id: t.conv.id, body,
      attachments: t.pending.map((a) => a.id) });
    sendBtn.disabled = false;
    if (!answer.ok) { onError?.(answer.error.message); return; }
    text.value = '';
    t.pending = [];
    replace(chips);
    text.focus();
  }

  function editInline(m) {
    const item = t.items.get(m.id);
    const area = h('textarea', { class: 'compose-text', rows: '2', 'aria-label': 'Modifier le message' }, m.body);
    const save = h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Enregistrer');
    const cancel = h('button', { type: 'button', class: 'btn btn-light btn-small', onclick: () => upsert(m) }, 'Annuler');
    const editor = h('form', { class: 'msg-edit', onsubmit: async (e) => {
      e.preventDefault();
      const answer = await conn.call('edit', { message_id: m.id, body: area.value });
      if (!answer.ok) onError?.(answer.error.message);
    } }, area, save, cancel);
    item.node.querySelector('.msg-body').replaceWith(editor);
    area.focus();
  }

  async function remove(m, how) {
    const question = how === 'recall'
      ? 'Rappeler ce message ? Il disparaîtra pour tous les destinataires.'
      : 'Supprimer ce message ? Les autres verront « Message supprimé ».';
    if (!window.confirm(question)) return;
    const answer = await conn.call(how, { message_id: m.id });
    if (!answer.ok) onError?.(answer.error.message);
  }

  async function report(m) {
    const reason = window.prompt('Pourquoi signalez-vous ce message à la vie scolaire ?', '');
    if (reason === null) return;
    const answer = await conn.call('report', { message_id: m.id, reason });
    onError?.(answer.ok ? 'Message signalé à la vie scolaire (CPE). Merci.' : answer.error.message);
  }

  return { el, load, apply, typing, acked, receipt, online, get conv() { return t.conv; },
    lastSeq: () => Math.max(0, ...[...t.items.values()].map((i) => i.m.seq)),
    destroy: () => clearTimeout(t.typingTimer) };
}
