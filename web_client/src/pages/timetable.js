// "Emploi du temps du jour": one day's courses, previous/next day, the current course marked.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { addDays, longDate, nowHM, today } from '../dates.js';

const COLUMNS = ['Heure', 'Matière', 'Classe', 'Salle', 'Enseignant·e'];
let counter = 0;

/**
 * A section that loads and shows one day. `studentId` picks a parent's child;
 * `onDateChange(date)` lets the page remember the day the person moved to (null: today).
 */
export function timetableSection(ctx, { date, studentId, title = 'Emploi du temps du jour',
  level = 2, onDateChange } = {}) {
  const id = `tt-${++counter}`;
  let day = date ?? today(ctx.tz);
  const dateLine = h('p', { class: 'tt-date', id: `${id}-date`, 'aria-live': 'polite' });
  const body = h('div', { class: 'tt-body' });
  const dayButton = (which, delta, ...content) => h('button', {
    type: 'button', class: `btn day-${which}`, 'data-day': which,
    onclick: () => {
      show(delta === 0 ? today(ctx.tz) : addDays(day, delta));
      onDateChange?.(day === today(ctx.tz) ? null : day);
    },
  }, ...content);
  const arrow = (sign) => h('span', { class: 'arrow', 'aria-hidden': 'true' }, sign);

  const section = h('section', { class: 'card timetable', 'aria-labelledby': `${id}-title` },
    h(`h${level}`, { id: `${id}-title` }, title),
    dateLine,
    h('nav', { class: 'day-nav', 'aria-label': 'Changer de jour' },
      dayButton('previous', -1, arrow('‹'), h('span', { class: 'day-label' }, 'Jour précédent')),
      dayButton('today', 0, "Aujourd'hui"),
      dayButton('next', 1, h('span', { class: 'day-label' }, 'Jour suivant'), arrow('›'))),
    body);

  async function show(newDay) {
    day = newDay;
    dateLine.textContent = longDate(day);
    section.dataset.date = day;
    body.setAttribute('aria-busy', 'true');
    replace(body, h('p', { class: 'muted' }, "Chargement de l'emploi du temps…"));
    try {
      const { slots } = await api.timetable(day, studentId);
      if (day !== newDay) return; // a later click won the race
      replace(body, slots.length
        ? slotTable(slots, `${id}-title`)
        : h('p', { class: 'empty' }, 'Aucun cours ce jour'));
      const count = slots.length ? `${slots.length} cours` : 'aucun cours';
      dateLine.textContent = `${longDate(day)} — ${count}`;
      markCurrent();
    } catch (err) {
      if (day === newDay) ctx.fail(err, body);
    } finally {
      body.removeAttribute('aria-busy');
    }
  }

  function markCurrent() {
    const isToday = day === today(ctx.tz);
    const now = nowHM(ctx.tz);
    for (const row of body.querySelectorAll('tr[data-start]')) {
      const current = isToday && row.dataset.start <= now && now < row.dataset.end;
      row.classList.toggle('current', current);
      if (current) row.setAttribute('aria-current', 'time');
      else row.removeAttribute('aria-current');
    }
  }
  let seen = false; // refresh the mark while shown; stop once the section is gone
  const timer = setInterval(() => {
    if (section.isConnected) { seen = true; markCurrent(); } else if (seen) clearInterval(timer);
  }, 30_000);

  show(day);
  return section;
}

// Explicit roles keep the table a table for screen readers when phones restyle it as blocks.
function slotTable(slots, labelledBy) {
  const sorted = [...slots].sort((a, b) =>
    a.start.localeCompare(b.start) || a.class_name.localeCompare(b.class_name));
  const cell = (label, ...content) => h('td', { role: 'cell', 'data-label': label }, ...content);
  return h('table', { class: 'slots', role: 'table', 'aria-labelledby': labelledBy },
    h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' },
      COLUMNS.map((c) => h('th', { scope: 'col', role: 'columnheader' }, c)))),
    h('tbody', { role: 'rowgroup' }, sorted.map((s) => h('tr', {
      role: 'row', 'data-start': s.start, 'data-end': s.end, 'data-slot-id': s.id,
    },
    h('td', { role: 'cell', 'data-label': COLUMNS[0], class: 'time' },
      h('span', {}, h('time', {}, s.start), ' – ', h('time', {}, s.end),
        h('span', { class: 'now-badge' }, 'En cours'))),
    h('th', { scope: 'row', role: 'rowheader', 'data-label': COLUMNS[1] }, s.subject),
    cell(COLUMNS[2], s.class_name),
    cell(COLUMNS[3], s.room || '—'),
    cell(COLUMNS[4], s.teacher_name)))));
}
