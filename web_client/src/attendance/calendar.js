// « Calendrier de l'établissement » (CPE, administration): the zone, the holidays and public
// holidays that stop reminders, and the collège's own closures imported from a CSV
// (debut;fin;libelle) or an iCalendar file.
import { h, replace } from '../dom.js';
import { longDate } from '../dates.js';
import { apiJson, apiUpload } from '../api.js';

export function calendarSection(schoolId) {
  const url = `/api/attendance/schools/${schoolId}/calendar`;
  const body = h('div', {});
  const status = h('p', { role: 'status', 'aria-live': 'polite' });
  const error = h('div', { class: 'alert', role: 'alert' });
  const file = h('input', { type: 'file', id: 'closures-file', accept: '.csv,.ics,text/csv,text/calendar' });
  const replaceAll = h('input', { type: 'checkbox', id: 'closures-replace' });

  async function load() {
    try {
      const cal = await apiJson('GET', url);
      const upcoming = cal.days_off.filter((d) => d.date >= new Date().toISOString().slice(0, 10));
      replace(body,
        h('p', {}, `Calendrier scolaire : ${cal.zone_label}. Jours sans cours à venir : `,
          upcoming.length ? `${upcoming.length} (prochain : ${longDate(upcoming[0].date)}, ${upcoming[0].label}).`
            : 'aucun.'),
        h('h3', {}, 'Fermetures de l\'établissement'),
        cal.closures.length ? h('ul', { class: 'closure-list' }, cal.closures.map((c) => h('li', {
          'data-closure-id': c.id },
        `${c.start === c.end ? longDate(c.start) : `du ${longDate(c.start)} au ${longDate(c.end)}`} : ${c.label} `,
        cal.can_edit ? h('button', { type: 'button', class: 'btn', onclick: async () => {
          try {
            await apiJson('DELETE', `/api/attendance/schools/${schoolId}/closures/${c.id}`);
            status.textContent = `Fermeture « ${c.label} » retirée.`;
            load();
          } catch (err) { replace(error, h('p', {}, err.message)); }
        } }, 'Retirer') : null)))
          : h('p', { class: 'empty' }, 'Aucune fermeture propre à l\'établissement.'),
        cal.can_edit ? importForm() : null);
      replace(error);
    } catch (err) { replace(error, h('p', {}, err.message)); }
  }

  function importForm() {
    return h('form', { class: 'closures-form', onsubmit: async (e) => {
      e.preventDefault();
      const f = file.files[0];
      if (!f) { file.focus(); return; }
      try {
        const data = await apiUpload(`/api/attendance/schools/${schoolId}/closures?filename=${
          encodeURIComponent(f.name)}${replaceAll.checked ? '&replace=1' : ''}`, f);
        status.textContent = `${data.read} fermeture(s) lue(s), ${data.added} ajoutée(s).`;
        load();
      } catch (err) { replace(error, h('p', {}, err.message)); }
    } },
    h('label', { for: 'closures-file' }, 'Importer des fermetures (CSV debut;fin;libelle ou iCalendar .ics)'), file,
    h('label', { for: 'closures-replace', class: 'inline' }, replaceAll, ' Remplacer la liste actuelle'),
    h('button', { type: 'submit', class: 'btn btn-primary' }, 'Importer'));
  }

  load();
  return h('section', { class: 'card', 'aria-labelledby': 'calendar-title' },
    h('h2', { id: 'calendar-title' }, 'Calendrier de l\'établissement'), error, body, status);
}
