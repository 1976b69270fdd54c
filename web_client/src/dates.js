// Calendar days as "YYYY-MM-DD" strings, "today" and "now" in the school's time zone.

const ISO = /^\d{4}-\d{2}-\d{2}$/;

export function isIsoDate(text) {
  if (!ISO.test(text ?? '')) return false;
  const d = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === text;
}

function parts(timeZone, date = new Date()) {
  const fmt = new Intl.DateTimeFormat('en-GB', {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  });
  return Object.fromEntries(fmt.formatToParts(date).map((p) => [p.type, p.value]));
}

/** Today's date where the school is, whatever the device's own time zone. */
export function today(timeZone) {
  const p = parts(timeZone);
  return `${p.year}-${p.month}-${p.day}`;
}

/** The time of day "HH:MM" where the school is. */
export function nowHM(timeZone) {
  const p = parts(timeZone);
  return `${p.hour}:${p.minute}`;
}

export function addDays(iso, n) {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

const LONG = new Intl.DateTimeFormat('fr-FR', {
  weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC',
});

/** "lundi 30 novembre 2026" */
export function longDate(iso) {
  return LONG.format(new Date(`${iso}T00:00:00Z`));
}
