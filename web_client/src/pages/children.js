// A parent's "Mes enfants": one card per child, each can open that child's day.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { timetableSection } from './timetable.js';
import { de } from '../french.js';

export function childrenSection(ctx) {
  const list = h('div', { class: 'cards', 'aria-busy': 'true' },
    h('p', { class: 'muted' }, 'Chargement…'));
  const section = h('section', { class: 'children', 'aria-labelledby': 'children-title' },
    h('h2', { id: 'children-title' }, 'Mes enfants'), list);

  api.children().then(({ children }) => {
    list.removeAttribute('aria-busy');
    replace(list, children.length
      ? h('ul', { class: 'card-list' }, children.map((child) => h('li', {}, childCard(ctx, child))))
      : h('p', { class: 'empty' }, "Aucun enfant n'est rattaché à votre compte."));
  }, (err) => {
    list.removeAttribute('aria-busy');
    ctx.fail(err, list);
  });
  return section;
}

function childCard(ctx, child) {
  const panelId = `child-${child.id}-day`;
  const panel = h('div', { id: panelId, class: 'child-day', hidden: true });
  const toggle = h('button', {
    type: 'button', class: 'btn btn-primary', 'aria-expanded': 'false', 'aria-controls': panelId,
  }, "Voir l'emploi du temps du jour", h('span', { class: 'chevron', 'aria-hidden': 'true' }));
  // The name stays; aria-expanded (and the chevron) tell whether the day is shown.
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    panel.hidden = !open;
    if (open && !panel.firstChild) {
      panel.append(timetableSection(ctx, {
        date: ctx.date, studentId: child.id, level: 3,
        title: `Emploi du temps du jour ${de(child.name)}`,
      }));
    }
  });
  return h('article', { class: 'card child', 'aria-labelledby': `child-${child.id}-name`, 'data-login': child.login },
    h('h3', { id: `child-${child.id}-name` }, child.name),
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Classe'), h('dd', {}, child.class_name ?? '—')),
      h('div', {}, h('dt', {}, 'Établissement'), h('dd', {}, child.school_name ?? '—'))),
    toggle,
    panel);
}
