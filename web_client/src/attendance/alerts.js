// « Signalements » on the CPE's dashboard: pupils with 4 unjustified half-days or more in
// the month (the threshold at which the school reports to the DASEN), with the half-days.
import { h, replace } from '../dom.js';
import { longDate } from '../dates.js';
import { apiJson } from '../api.js';

export function alertsSection() {
  const list = h('ul', { class: 'alert-list' });
  const intro = h('p', { class: 'muted' });
  let where = null;
  let timer = null;

  async function load(schoolId, month) {
    where = { schoolId, month };
    try {
      const data = await apiJson('GET', `/api/attendance/alerts?school_id=${schoolId}&month=${month}`);
      intro.textContent = `Élèves ayant au moins ${data.threshold} demi-journées d'absence non justifiées `
        + `en ${new Date(`${data.month}-01T12:00`).toLocaleDateString('fr-FR', { month: 'long', year: 'numeric' })} `
        + '(seuil de signalement à la DASEN).';
      replace(list, data.pupils.length ? data.pupils.map((p) => h('li', { 'data-student-id': p.student_id },
        h('strong', {}, p.name), ` (${p.class_name}) — ${p.count} demi-journées : `,
        p.half_days.map((x) => `${longDate(x.date)} ${x.half}`).join(', '), '.'))
        : h('li', { class: 'empty' }, 'Aucun élève au-dessus du seuil ce mois-ci.'));
    } catch (err) { replace(list, h('li', { class: 'alert' }, err.message)); }
  }

  return {
    element: h('section', { class: 'card', 'aria-labelledby': 'alerts-title' },
      h('h2', { id: 'alerts-title' }, 'Signalements (absentéisme)'), intro, list),
    load,
    reload() { // a decision changes the count: at most once a second
      if (!where || timer) return;
      timer = setTimeout(() => { timer = null; load(where.schoolId, where.month); }, 1000);
    },
  };
}
