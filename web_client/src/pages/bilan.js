// « Bilan des absences » (#/vie-scolaire/bilan?from=…&to=…&class=…): counts per pupil over a
// period for the school team (half-days justified or not, absences, lateness, early
// departures, what waits for a decision), a CSV for spreadsheets and a printable summary.
import { h, replace, setTitle } from '../dom.js';
import { apiJson } from '../api.js';
import { longDate } from '../dates.js';

export function renderBilan(root, ctx, { from, to, classId }) {
  setTitle('Bilan des absences');
  const error = h('div', { class: 'alert', role: 'alert' });
  const table = h('tbody');
  const caption = h('caption', {});
  const fromInput = h('input', { type: 'date', id: 'bilan-from', value: from ?? '' });
  const toInput = h('input', { type: 'date', id: 'bilan-to', value: to ?? '' });
  const classSelect = h('select', { id: 'bilan-class' }, h('option', { value: '' }, 'Tout l\'établissement'));
  const csv = h('a', { class: 'btn', download: true, href: '#' }, 'Télécharger (CSV)');
  const query = () => {
    const q = new URLSearchParams();
    if (fromInput.value) q.set('from', fromInput.value);
    if (toInput.value) q.set('to', toInput.value);
    if (classSelect.value) q.set('class_id', classSelect.value);
    return q.toString();
  };
  replace(root, h('header', { class: 'topbar no-print' }, h('div', { class: 'topbar-inner' },
    h('a', { class: 'btn btn-light', href: '#/vie-scolaire' }, 'Vie scolaire'))),
  h('main', { id: 'contenu', class: 'bilan-page', tabindex: '-1' },
    h('h1', { class: 'page-title', tabindex: '-1' }, 'Bilan des absences par élève'),
    h('form', { class: 'bilan-form no-print', onsubmit: (e) => { e.preventDefault(); load(); } },
      h('label', { for: 'bilan-from' }, 'Du', fromInput), h('label', { for: 'bilan-to' }, 'au', toInput),
      h('label', { for: 'bilan-class' }, 'Classe', classSelect),
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Afficher'), csv,
      h('button', { type: 'button', class: 'btn', onclick: () => window.print() }, 'Imprimer')),
    error,
    h('div', { class: 'table-wrap' }, h('table', { class: 'bilan-table' }, caption,
      h('thead', {}, h('tr', {}, ['Élève', 'Classe', 'Demi-journées', 'dont justifiées',
        'non justifiées', 'Absences', 'Retards', 'Minutes de retard', 'Départs anticipés', 'À traiter']
        .map((c) => h('th', { scope: 'col' }, c)))), table))));

  async function load() {
    try {
      const data = await apiJson('GET', `/api/attendance/counts?${query()}`);
      fromInput.value = data.from;
      toInput.value = data.to;
      csv.href = `/api/attendance/counts.csv?${query()}`;
      caption.textContent = `${data.school.name}${data.class ? ` — ${data.class.name}` : ''}, du `
        + `${longDate(data.from)} au ${longDate(data.to)} : ${data.pupils.length} élève(s).`;
      replace(table, data.pupils.length ? data.pupils.map((p) => h('tr', {
        'data-student-id': p.student_id, class: p.unjustified >= 4 ? 'over-threshold' : null },
      h('th', { scope: 'row' }, p.name), h('td', {}, p.class_name),
      [p.total, p.justified, p.unjustified, p.absences, p.late, p.late_minutes, p.left_early,
        p.pending].map((n) => h('td', { class: 'num' }, String(n)))))
        : h('tr', {}, h('td', { colspan: '10', class: 'empty' }, 'Aucune absence sur la période.')));
      replace(error);
    } catch (err) { replace(error, h('p', {}, err.message)); }
  }
  apiJson('GET', '/api/classes').then(({ classes }) => {
    classSelect.append(...classes.map((c) => h('option', { value: c.id,
      selected: String(c.id) === String(classId ?? '') }, c.name)));
  }, () => {});
  load();
}
