// "Classes de l'établissement" (CPE, administration): the classes, then one class's students,
// each with « Responsables »: their legal representatives' phones and e-mails from the
// académie's directory (the school team's need-to-know, docs/identity.md).
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { onlineCounts } from '../presence.js';
import { de } from '../french.js';

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

export function classesSection(ctx) {
  const list = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Chargement…'));
  const panelTitle = h('h2', { id: 'students-title', tabindex: '-1' }, 'Élèves');
  const panelBody = h('div', { class: 'students-body' },
    h('p', { class: 'muted' }, 'Choisissez une classe pour voir ses élèves.'));
  const panel = h('section', { class: 'card students', id: 'students-panel', 'aria-labelledby': 'students-title' },
    panelTitle, panelBody);
  let current = null;

  async function open(c, button) {
    current?.setAttribute('aria-pressed', 'false');
    current = button;
    button.setAttribute('aria-pressed', 'true');
    panelTitle.textContent = `Élèves de la classe ${c.name}`;
    panelBody.setAttribute('aria-busy', 'true');
    replace(panelBody, h('p', { class: 'muted' }, 'Chargement…'));
    panelTitle.focus();
    try {
      const { students } = await api.classStudents(c.id);
      if (current !== button) return;
      replace(panelBody,
        h('p', { class: 'muted' }, plural(students.length, 'élève', 'élèves')),
        students.length
          ? h('ol', { class: 'student-list' }, students.map((s) => h('li', { 'data-login': s.login },
            h('span', { class: 'student-name' }, s.name), ' ', guardiansToggle(ctx, s))))
          : h('p', { class: 'empty' }, 'Aucun élève dans cette classe.'));
    } catch (err) {
      if (current === button) ctx.fail(err, panelBody);
    } finally {
      panelBody.removeAttribute('aria-busy');
    }
  }

  api.classes().then(({ classes }) => {
    list.removeAttribute('aria-busy');
    replace(list, classes.length
      ? h('ul', { class: 'class-grid' }, classes.map((c) => h('li', {},
        h('button', {
          type: 'button', class: 'btn class-button', 'aria-pressed': 'false',
          'aria-controls': 'students-panel', 'data-class-id': c.id,
          onclick: (e) => open(c, e.currentTarget),
        }, h('span', { class: 'class-name' }, c.name), ' ',
        h('span', { class: 'class-count' }, plural(c.student_count, 'élève', 'élèves'))))))
      : h('p', { class: 'empty' }, 'Aucune classe.'));
    onlineCounts(list); // « n en ligne » per class (presence)
  }, (err) => {
    list.removeAttribute('aria-busy');
    ctx.fail(err, list);
  });

  return h('div', { class: 'split' },
    h('section', { class: 'card classes', 'aria-labelledby': 'classes-title' },
      h('h2', { id: 'classes-title' }, "Classes de l'établissement"), list),
    panel);
}

const CONTACT_LINES = [
  ['mobile_phone', 'Portable', 'tel:'],
  ['home_phone', 'Domicile', 'tel:'],
  ['work_phone', 'Travail', 'tel:'],
  ['email', 'Courriel', 'mailto:'],
];

// « Responsables » under a pupil's name: loaded on demand, the first time it is opened.
function guardiansToggle(ctx, student) {
  const id = `guardians-${student.id}`;
  const box = h('div', { class: 'guardian-box', id, hidden: true });
  let loaded = false;
  const button = h('button', {
    type: 'button', class: 'btn guardians-button', 'aria-expanded': 'false',
    'aria-controls': id, 'aria-label': `Responsables ${de(student.name)}`,
    onclick: async () => {
      const open = button.getAttribute('aria-expanded') !== 'true';
      button.setAttribute('aria-expanded', String(open));
      box.hidden = !open;
      if (!open || loaded) return;
      box.setAttribute('aria-busy', 'true');
      replace(box, h('p', { class: 'muted' }, 'Chargement…'));
      try {
        const { guardians } = await api.guardianContacts(student.id);
        loaded = true;
        replace(box, guardians.length
          ? h('ul', { class: 'guardian-list' }, guardians.map((g) => h('li', {},
            h('strong', {}, g.name),
            CONTACT_LINES.some(([k]) => g[k])
              ? h('ul', { class: 'guardian-contacts' }, CONTACT_LINES.filter(([k]) => g[k])
                .map(([k, label, scheme]) => h('li', {}, `${label} : `,
                  h('a', { href: `${scheme}${g[k].replace(/\s+/g, '')}` }, g[k]))))
              : h('p', { class: 'muted' }, 'Aucune coordonnée connue.'))))
          : h('p', { class: 'empty' }, 'Aucun responsable légal connu.'));
      } catch (err) {
        ctx.fail(err, box);
      } finally {
        box.removeAttribute('aria-busy');
      }
    },
  }, 'Responsables');
  return [button, box];
}
