// Start-up and hash routing: #/login, #/ (and #/?date=YYYY-MM-DD for another day),
// #/boards/<id> (a live classroom board), #/appel (a roll), #/vie-scolaire (the CPE's
// dashboard), #/absences (a guardian's notices and each child's absences).
// #/boards/<id> (a live classroom board), #/messages[/<id>|/new] (the messagerie).
// #/boards/<id> (a live classroom board), #/docs/<id> (a course document co-edited live).
import { api } from './api.js';
import { isIsoDate } from './dates.js';
import { h, replace, setTitle } from './dom.js';
import { renderAbsences } from './pages/absences.js';
import { renderBilan } from './pages/bilan.js';
import { renderBoard } from './pages/board.js';
import { renderCourseDoc } from './pages/coursedoc.js';
import { renderHome } from './pages/home.js';
import { renderLogin } from './pages/login.js';
import { renderRoll } from './pages/roll.js';
import { renderVieScolaire } from './pages/vie-scolaire.js';
import { renderMessages } from './pages/messages.js';
import { connect, disconnect, liveStatus } from './socket.js';

const root = document.getElementById('app');
const state = {
  me: null, tz: 'Europe/Paris', status: null, notice: null, focusTitle: false, wanted: null,
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
  try { await api.logout(); } catch { /* the session is dropped locally all the same */ }
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
    leavePage = renderBoard(root, { boardId: /^\d+$/.test(id) ? Number(id) : id });
    return undefined;
  }
  if (messages) {
    const id = messages[1];
    messagesPage = renderMessages(root, {
      me: state.me, tz: state.tz, status: state.status, open: go,
      conversationId: id === 'new' ? 'new' : id ? Number(id) : null,
    });
    leavePage = () => messagesPage?.close();
    return undefined;
  }
  const courseDoc = path.match(/^\/docs\/(\d+)$/);
  if (courseDoc) {
    leavePage = renderCourseDoc(root, { docId: Number(courseDoc[1]), me: state.me, fail });
    return undefined;
  }
  const date = params.get('date');
  if (path === '/appel') { // #/appel?slot=<id>&date=… or ?permanence=<id>
    leavePage = renderRoll(root, { slotId: Number(params.get('slot')) || null,
      hallId: Number(params.get('permanence')) || null, date: isIsoDate(date) ? date : null });
    return undefined;
  }
  if (path === '/vie-scolaire') {
    leavePage = renderVieScolaire(root, { date: isIsoDate(date) ? date : null });
    return undefined;
  }
  if (path === '/vie-scolaire/bilan') { // counts per pupil, CSV and print
    renderBilan(root, { me: state.me }, { from: isIsoDate(params.get('from')) ? params.get('from') : null,
      to: isIsoDate(params.get('to')) ? params.get('to') : null, classId: params.get('class') });
    return undefined;
  }
  if (path === '/absences') {
    leavePage = renderAbsences(root, { me: state.me,
      noticeId: Number(params.get('notice')) || null }); // a tapped Web Push notification
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
  } catch (err) {
    root.removeAttribute('aria-busy');
    return showFatal(err);
  }
  root.removeAttribute('aria-busy');
  window.addEventListener('hashchange', () => route());
  route();
}

start();
