// « Tableaux » on Mon espace: a teacher starts a new board for a class or resumes one;
// a student opens the boards of their class.
import { api } from '../api.js';
import { h, replace } from '../dom.js';

const STATES = { live: 'En direct', locked: 'Verrouillé', ended: 'Terminé' };

/** The server gives seconds since 1970 (a float); Date wants milliseconds. */
export function when(seconds, timeZone) {
  const d = new Date(Number(seconds) * 1000);
  if (!seconds || Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat('fr-FR', {
    weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZone,
  }).format(d);
}

export function boardsSection(ctx) {
  const teacher = ctx.me.user.role === 'teacher';
  const body = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Chargement des tableaux…'));
  const section = h('section', { class: 'card boards', 'aria-labelledby': 'boards-title' },
    h('h2', { id: 'boards-title' }, 'Tableaux'), body);

  api.classes().then(({ classes }) => {
    const own = teacher ? classes
      : classes.filter((c) => (ctx.me.class_ids ?? []).map(String).includes(String(c.id)));
    const ids = own.length ? own : (ctx.me.class_ids ?? []).map((id) => ({ id, name: null }));
    body.removeAttribute('aria-busy');
    replace(body, ids.length
      ? ids.map((c) => classBoards(ctx, c, { teacher, single: ids.length === 1 }))
      : h('p', { class: 'empty' }, 'Aucune classe.'));
  }, (err) => {
    body.removeAttribute('aria-busy');
    ctx.fail(err, body);
  });
  return section;
}

function classBoards(ctx, c, { teacher, single }) {
  const headId = `boards-class-${c.id}`;
  const list = h('div', { class: 'board-list', 'aria-busy': 'true' },
    h('p', { class: 'muted' }, 'Chargement…'));
  const error = h('div', { class: 'alert', role: 'alert' });
  const heading = c.name ? `Classe ${c.name}` : 'Ma classe';

  async function create(button) {
    button.disabled = true;
    replace(error);
    const day = new Intl.DateTimeFormat('fr-FR', { day: 'numeric', month: 'long', timeZone: ctx.tz })
      .format(new Date());
    try {
      const board = await api.createBoard(`Cours du ${day}${c.name ? ` – ${c.name}` : ''}`, c.id);
      location.hash = `#/boards/${encodeURIComponent(board.id)}`;
    } catch (err) {
      button.disabled = false;
      if (err.status === 401) ctx.fail(err, error);
      else replace(error, h('p', {}, err.message));
    }
  }

  api.boards(c.id).then(({ boards }) => {
    list.removeAttribute('aria-busy');
    replace(list, boards.length
      ? [teacher ? h('p', { class: 'boards-resume' }, 'Reprendre le cours') : null,
        h('ul', { class: 'boards-list', 'aria-label': `Tableaux : ${heading}` },
          [...boards].sort((a, b) => (b.updated_at ?? b.created_at) - (a.updated_at ?? a.created_at))
            .map((b) => boardRow(ctx, b, c.name)))]
      : h('p', { class: 'empty' }, teacher ? 'Aucun tableau pour cette classe.' : 'Aucun tableau pour le moment.'));
  }, (err) => {
    list.removeAttribute('aria-busy');
    ctx.fail(err, list);
  });

  return h('div', { class: 'board-class', 'data-class-id': c.id, role: 'group', 'aria-labelledby': headId },
    h('div', { class: 'board-class-head' },
      h(single && !teacher ? 'p' : 'h3', { id: headId, class: 'board-class-name' }, heading),
      teacher ? h('button', {
        type: 'button', class: 'btn btn-primary new-board', 'data-class-id': c.id,
        'aria-describedby': headId,
        onclick: (e) => create(e.currentTarget),
      }, 'Nouveau tableau') : null),
    error,
    list);
}

function boardRow(ctx, b, className) {
  const pages = b.page_count ?? 1;
  const date = when(b.updated_at ?? b.created_at, ctx.tz);
  return h('li', { class: 'board-row', 'data-board-id': b.id },
    h('img', { class: 'board-thumb', src: `/api/boards/${encodeURIComponent(b.id)}/thumbnail.png?v=${encodeURIComponent(b.updated_at ?? '')}`,
      alt: '', loading: 'lazy', width: '144', height: '81' }),
    h('div', { class: 'board-row-text' },
      h('p', { class: 'board-row-title' }, b.title),
      h('p', { class: 'board-row-meta' },
        [className ? `Classe ${className}` : null, `${pages} page${pages > 1 ? 's' : ''}`,
          STATES[b.state] ?? b.state].filter(Boolean).join(' · ')),
      h('p', { class: 'board-row-meta board-row-date' },
        [b.owner_name, date ? h('time', { datetime: new Date(Number(b.updated_at ?? b.created_at) * 1000).toISOString() }, date) : null]
          .filter(Boolean).flatMap((x, i) => (i ? [' · ', x] : [x])))),
    h('a', { class: 'btn', href: `#/boards/${encodeURIComponent(b.id)}`,
      'aria-label': `Ouvrir le tableau ${b.title}` }, 'Ouvrir'));
}
