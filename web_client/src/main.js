// Start-up and hash routing: #/login, #/ (and #/?date=YYYY-MM-DD for another day),
// #/boards/<id> (a live classroom board), #/appel (a roll), #/vie-scolaire (the CPE's
// dashboard), #/absences (a guardian's notices and each child's absences).
// #/boards/<id> (a live classroom board), #/messages[/<id>|/new] (the messagerie).
// #/boards/<id> (a live classroom board), #/docs/<id> (a course document co-edited live).
import { api } from './api.js';
import { isIsoDate } from './dates.js';
import { h, replace, setTitle } from './dom.js';
import { renderHome } from './pages/home.js';
import { renderLogin } from './pages/login.js';
import { connect, disconnect, liveStatus } from './socket.js';

const root = document.getElementById('app');
const state = {
  me: null, tz: 'Europe/Paris', status: null, notice: null, focusTitle: false, wanted: null,
  sso: null,
};

function parseHash() {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  return { path: path || '/', params: new URLSearchParams(query) };
}

let leavePage = null; // the open page's clean-up (the board closes its connection)

const go = (hash) => {
  if (location.hash === hash) route(); else location.replace(hash);
};

function startLive() {
  state.status = liveStatus();
  connect(state.status, { onRefused: (err) => { if (err?.code === 'unauthorized') expired(); } });
}

function expired() {
  if (!state.me) return;
  state.me = null;
  disconnect();
  state.notice = 'Votre session a expiré. Reconnectez-vous.';
  go('#/login');
}

async function logout() {
  let ended = null;
  try { ended = await api.logout(); } catch { /* the session is dropped locally all the same */ }
  if (ended?.redirect) { // signed in through the ENT: leave the ENT too (single logout)
    disconnect();
    location.assign(ended.redirect);
    return;
  }
  state.me = null;
  disconnect();
  state.notice = 'Vous êtes déconnecté·e.';
  go('#/login');
}

/** Show an error where it happened, or go back to the login page if the session is gone. */
function fail(err, container) {
  if (err?.status === 401) { expired(); return; }
  replace(container, h('div', { class: 'alert', role: 'alert' }, h('p', {}, err.message)));
}

async function loadMe() {
  try {
    state.me = await api.me();
    startLive();
  } catch (err) {
    if (err.status !== 401) throw err;
    state.me = null;
  }
}

let messagesPage = null; // kept while moving between conversations: one connection

/**
 * Open a page whose code is loaded on demand (a separate chunk: the course editor alone is
 * most of the client's weight). `render` gets the module and returns the page's clean-up.
 */
function lazyPage(load, render) {
  let left = false;
  let leave = null;
  replace(root, h('main', { id: 'contenu', tabindex: '-1' },
    h('p', { class: 'loading', role: 'status' }, 'Chargement…')));
  load().then((module) => {
    if (!left) leave = render(module);
  }).catch((err) => {
    if (!left) fail(new Error("Cette page n'a pas pu être chargée. Vérifiez la connexion et réessayez."), root);
    console.error(err);
  });
  return () => { left = true; leave?.(); };
}

async function route() {
  const { path, params } = parseHash();
  const messages = path.match(/^\/messages(?:\/(\d+|new))?$/);
  if (messages && messagesPage && state.me) {
    const id = messages[1];
    return messagesPage.show(id === 'new' ? 'new' : id ? Number(id) : null);
  }
  messagesPage = null;
  leavePage?.();
  leavePage = null;
  if (path === '/login') {
    if (state.me) return go('#/');
    const notice = state.notice;
    state.notice = null;
    return renderLogin(root, {
      notice,
      sso: state.sso,
      wanted: state.wanted,
      onLoggedIn: async () => {
        await loadMe();
        state.focusTitle = true;
        go(state.wanted ?? '#/');
        state.wanted = null;
      },
    });
  }
  if (!state.me) {
    state.wanted = location.hash || null; // e.g. #/?date=…: shown once logged in
    return go('#/login');
  }
  const board = path.match(/^\/boards\/([^/]+)$/);
  if (board) {
    const id = decodeURIComponent(board[1]);
    leavePage = lazyPage(() => import('./pages/board.js'), ({ renderBoard }) =>
      renderBoard(root, { boardId: /^\d+$/.test(id) ? Number(id) : id }));
    return undefined;
  }
  if (messages) {
    const id = messages[1];
    leavePage = lazyPage(() => import('./pages/messages.js'), ({ renderMessages }) => {
      const page = renderMessages(root, {
        me: state.me, tz: state.tz, status: state.status, open: go,
        conversationId: id === 'new' ? 'new' : id ? Number(id) : null,
      });
      messagesPage = page;
      return () => page.close(); // the page itself: `messagesPage` is reset before leaving
    });
    return undefined;
  }
  const courseDoc = path.match(/^\/docs\/(\d+)$/);
  if (courseDoc) {
    leavePage = lazyPage(() => import('./pages/coursedoc.js'), ({ renderCourseDoc }) =>
      renderCourseDoc(root, { docId: Number(courseDoc[1]), me: state.me, fail }));
    return undefined;
  }
  const date = params.get('date');
  if (path === '/appel') { // #/appel?slot=<id>&date=… or ?permanence=<id>
    leavePage = lazyPage(() => import('./pages/roll.js'), ({ renderRoll }) =>
      renderRoll(root, { slotId: Number(params.get('slot')) || null,
        hallId: Number(params.get('permanence')) || null, date: isIsoDate(date) ? date : null }));
    return undefined;
  }
  if (path === '/vie-scolaire') {
    leavePage = lazyPage(() => import('./pages/vie-scolaire.js'), ({ renderVieScolaire }) =>
      renderVieScolaire(root, { date: isIsoDate(date) ? date : null }));
    return undefined;
  }
  if (path === '/vie-scolaire/bilan') { // counts per pupil, CSV and print
    leavePage = lazyPage(() => import('./pages/bilan.js'), ({ renderBilan }) =>
      renderBilan(root, { me: state.me }, {
        from: isIsoDate(params.get('from')) ? params.get('from') : null,
        to: isIsoDate(params.get('to')) ? params.get('to') : null, classId: params.get('class') }));
    return undefined;
  }
  if (path === '/absences') {
    leavePage = lazyPage(() => import('./pages/absences.js'), ({ renderAbsences }) =>
      renderAbsences(root, { me: state.me, // noticeId: a tapped Web Push notification
        noticeId: Number(params.get('notice')) || null }));
    return undefined;
  }
  renderHome(root, {
    me: state.me,
    tz: state.tz,
    date: isIsoDate(date) ? date : null,
    status: state.status,
    logout,
    fail,
    rememberDate: (day) => history.replaceState(null, '', day ? `#/?date=${day}` : '#/'),
  });
  if (state.focusTitle) { // after logging in, start reading at the page's title
    state.focusTitle = false;
    document.querySelector('h1')?.focus();
  }
}

function showFatal(err) {
  setTitle('Erreur');
  replace(root, h('main', { id: 'contenu', class: 'login-page', tabindex: '-1' },
    h('div', { class: 'login-card' },
      h('h1', {}, 'Service indisponible'),
      h('div', { class: 'alert', role: 'alert' }, h('p', {}, err.message)),
      h('button', {
        type: 'button', class: 'btn btn-primary btn-block', onclick: () => location.reload(),
      }, 'Réessayer'))));
}

// "Aller au contenu" must not disturb the hash routing.
document.addEventListener('click', (event) => {
  if (!event.target.closest?.('.skip-link')) return;
  event.preventDefault();
  document.getElementById('contenu')?.focus();
});

async function start() {
  try {
    const [config] = await Promise.all([api.config().catch(() => ({})), loadMe()]);
    if (config.timezone) state.tz = config.timezone;
    state.sso = config.sso ?? null;
  } catch (err) {
    root.removeAttribute('aria-busy');
    return showFatal(err);
  }
  root.removeAttribute('aria-busy');
  window.addEventListener('hashchange', () => route());
  route();
}

start();
