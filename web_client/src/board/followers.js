// « Qui suit le tableau » : the teacher's live list of who follows this board
// (docs/presence.md), on the board's presence scope followed by `watchRoster` (roster.js:
// version order, the whole roster again on a gap or a new epoch, never from what this page
// happens to have seen).
import { h, replace } from '../dom.js';
import { sinceText, watchRoster } from '../roster.js';

/** A « Élèves connectés » menu for the teacher's bar; `close()` ends its connection. */
export function followersPanel(boardId, { me } = {}) {
  const scope = `board:${boardId}`;
  const count = h('span', { class: 'followers-count' }, '0');
  const list = h('ul', { class: 'followers-list', 'aria-live': 'polite' });
  const el = h('details', { class: 'menu menu-end followers', dataset: { scope } },
    h('summary', { class: 'btn tool', title: 'Qui suit le tableau en ce moment' },
      h('span', { class: 'label-wide' }, 'Élèves connectés : '), count),
    h('div', { class: 'menu-list' }, list));

  function render(users) {
    const pupils = [...users.values()]
      .filter((u) => u.role === 'student' && String(u.id) !== String(me?.id))
      .sort((a, b) => a.name.localeCompare(b.name, 'fr'));
    count.textContent = String(pupils.length);
    el.dataset.count = String(pupils.length);
    replace(list, pupils.length
      ? pupils.map((u) => h('li', { 'data-user-id': u.id }, u.name,
        h('span', { class: 'muted' }, ` depuis ${sinceText(u.since)}`
          + (u.devices > 1 ? ` · ${u.devices} appareils` : ''))))
      : h('li', { class: 'empty' }, 'Aucun élève ne suit le tableau.'));
  }

  const roster = watchRoster(render);
  roster.watch(scope); // renders the empty list until the roster arrives
  return { el, close: () => roster.close() };
}
