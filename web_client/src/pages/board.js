// « Tableau » (#/boards/<id>): the live classroom board of docs/boards.md.
// The teacher draws, changes pages, hands the pen; students follow the teacher's page and
// zoom, and draw when given the pen. Returns a function that closes the board.
import { boardChat } from '../board/chat.js';
import { h, replace, setTitle } from '../dom.js';
import { BoardConnection } from '../board/connection.js';
import { followersPanel } from '../board/followers.js';
import { PAGE_H, PAGE_W } from '../board/geometry.js';
import { newId } from '../board/ids.js';
import { attachInput } from '../board/input.js';
import { pageBar } from '../board/pagebar.js';
import { penControl, penText } from '../board/pen.js';
import { BoardState } from '../board/state.js';
import { COLOURS, drawingTools } from '../board/toolbar.js';
import { icon } from '../board/icons.js';
import { BoardView } from '../board/view.js';
import { liveStatus } from '../socket.js';
import { textTool } from '../board/text.js';
import { attachBoardKeys } from '../board/keyboard.js';

const ZOOMS = [1, 1.5, 2, 3, 4];
const FONT_SIZES = { 3: 32, 6: 48, 12: 72 };
const MESSAGE_MS = 8000;
const VIEW_EVERY_MS = 100;

export function renderBoard(root, { boardId }) {
  setTitle('Tableau');
  const state = new BoardState();
  const view = new BoardView(state);
  const names = new Map(); // student id → name (the pen, laser labels)
  const model = {
    tool: 'pen', colour: COLOURS[0][0], width: 6, pageId: null, following: true, share: true,
    pen: 'none', boardState: 'live', me: null, board: null, limits: {}, lastView: null,
    wantedView: null, started: false,
  };
  const isTeacher = () => Boolean(model.me?.is_teacher);
  let followers = null;

  // ——— the page ———
  const status = liveStatus();
  const message = h('p', { class: 'board-message', role: 'status', 'aria-live': 'polite' });
  const title = h('h1', { class: 'board-title', tabindex: '-1' }, 'Tableau');
  const meta = h('p', { class: 'board-meta' });
  const penBadge = h('p', { class: 'pen-badge' });
  const teacherBox = h('div', { class: 'bar-group teacher-controls', role: 'group',
    'aria-label': "Commandes de l'enseignant·e", hidden: true });
  const exportMenu = h('details', { class: 'menu menu-end' },
    h('summary', { class: 'btn tool' }, 'Exporter'),
    h('div', { class: 'menu-list' },
      h('a', { class: 'btn menu-item', href: `/api/boards/${encodeURIComponent(boardId)}/export.pdf`,
        download: true }, 'Exporter en PDF'),
      h('a', { class: 'btn menu-item', href: `/api/boards/${encodeURIComponent(boardId)}/export.svg`,
        download: true }, 'Exporter en SVG')));
  const header = h('header', { class: 'board-bar' },
    h('a', { class: 'btn btn-light back', href: '#/', title: 'Retour à Mon espace' },
      icon('back'), h('span', { class: 'label-wide' }, 'Mon espace')),
    h('div', { class: 'board-heading' }, title, meta),
    status, penBadge, teacherBox, exportMenu);

  const tools = drawingTools({
    tool: (name) => { model.tool = name; refresh(); },
    colour: (hex) => { model.colour = hex; refresh(); },
    width: (w) => { model.width = w; refresh(); },
    undo: () => control('undo'),
    redo: () => control('redo'),
  });
  const pages = pageBar({
    previous: () => goTo(pageIndex() - 1, { manual: true }),
    next: () => goTo(pageIndex() + 1, { manual: true }),
    addPage,
    zoom: zoomBy,
    follow: toggleFollow,
    fullscreen: toggleFullscreen,
  }, { teacher: true });
  const stage = h('div', { class: 'board-stage-wrap' }, view.el, message);
  view.el.setAttribute('role', 'img');
  // The session's questions (board/chat.js): their button at the end of the page bar, their
  // panel over the drawing area.
  const chat = boardChat(boardId, { area: stage });
  pages.end.append(chat.el);
  const main = h('main', { id: 'contenu', class: 'board-main', tabindex: '-1' },
    tools.el, stage, pages.el);
  const page = h('div', { class: 'board-page', dataset: { itemCount: '0', connection: 'connecting' } },
    header, main);
  replace(root, page);
  view.layout();

  // ——— the live link ———
  const conn = new BoardConnection(boardId, {
    joined,
    op: remoteOp,
    own: confirmed,
    pen: penChanged,
    state: stateChanged,
    view: viewReceived,
    pointer,
    status: (s, detail) => {
      status.set(s === 'joining' ? 'connecting' : s, detail);
      page.dataset.connection = s;
    },
    refused: (err) => {
      if (err?.code === 'unauthorized') say('Votre session a expiré. Reconnectez-vous.', true);
    },
    fatal: (err) => {
      replace(stage, h('div', { class: 'alert', role: 'alert' },
        h('p', {}, err?.message ?? "Ce tableau n'est pas accessible."),
        h('p', {}, h('a', { href: '#/' }, 'Retour à Mon espace'))));
    },
  });

  const canDraw = () => {
    if (!model.me || model.boardState === 'ended') return false;
    if (isTeacher()) return true;
    if (model.boardState === 'locked') return false;
    const pen = model.pen;
    return pen === 'everyone' || (Array.isArray(pen) && pen.map(String).includes(String(model.me.id)));
  };

  const inputCtx = {
    view, state, conn,
    me: () => model.me,
    tool: () => model.tool,
    pageId: () => model.pageId,
    canDraw,
    limits: () => model.limits,
    style: (kind) => ({
      color: model.colour,
      width: kind === 'highlighter' ? Math.min(64, model.width * 4) : model.width,
      opacity: kind === 'highlighter' ? 0.35 : 1,
      fill: null,
    }),
    local,
    commit,
    dropLocal: (id) => local({ type: 'remove', item_ids: [id] }),
    refused,
    panBy: (dx, dy) => {
      if (view.zoom <= 1) return;
      view.setViewport(view.x + dx, view.y + dy, view.zoom);
      viewChanged({ manual: true });
    },
    openText: (x, y, cx, cy) => text.open(x, y, cx, cy),
    laser: (x, y, pageId) => conn.volatile('pointer', { x, y, page_id: pageId, laser: true }),
  };
  const cancelGestures = attachInput(inputCtx);
  const text = textTool(stage, view, {
    fontSize: () => FONT_SIZES[model.width] ?? 48,
    maxLength: () => model.limits.text_length || 2000,
    commit: (item) => commit({ type: 'add', item: { ...item, id: newId(model.me?.id),
      page_id: model.pageId, style: { color: model.colour, width: 1, opacity: 1, fill: null } } }),
  });
  const boardKeys = attachBoardKeys(inputCtx); // shapes and text placed by keyboard too

  function joined(answer, { snapshot }) {
    model.me = answer.me ?? model.me;
    model.board = answer.board ?? model.board;
    model.limits = answer.limits ?? model.limits;
    if (answer.pen !== undefined) model.pen = answer.pen;
    model.boardState = answer.state ?? answer.board?.state ?? model.boardState;
    if (answer.view) model.lastView = answer.view;
    if (snapshot) {
      state.load(answer.snapshot);
      for (const [id, entry] of view.live) if (!entry.held) view.live.delete(id);
      view.invalidate();
    }
    if (!model.started) start();
    else if (!isTeacher() && model.following && model.lastView) applyView(model.lastView);
    ensurePage();
    refresh();
  }

  function start() {
    model.started = true;
    const board = model.board ?? {};
    title.textContent = board.title || 'Tableau';
    setTitle(board.title ? `Tableau « ${board.title} »` : 'Tableau');
    meta.textContent = [board.owner_name, stateLabel()].filter(Boolean).join(' · ');
    pages.el.querySelector('.follow .label-wide').textContent = isTeacher()
      ? 'Partager ma vue' : "Suivre l'enseignant·e";
    pages.el.querySelector('.menu').hidden = !isTeacher();
    if (!isTeacher()) model.tool = 'pen';
    if (isTeacher()) setUpTeacher(board);
    if (model.lastView && (!isTeacher() || state.page(model.lastView.page_id))) {
      applyView(model.lastView);
    }
    if (!state.pages.length && isTeacher()) addPage('blank');
    ensurePage();
    if (isTeacher()) sendView();
  }

  function setUpTeacher(board) {
    const pen = penControl({
      classId: board.class_id, names, current: () => model.pen,
      grant: async (p) => {
        const ack = await control('grant', { pen: p });
        if (ack.ok) { model.pen = p; refresh(); }
        return ack;
      },
    });
    const lock = h('button', { type: 'button', class: 'btn tool', 'aria-pressed': 'false',
      onclick: () => control('lock', { locked: model.boardState !== 'locked' }) },
    icon('lock'), h('span', { class: 'label-wide' }, 'Verrouiller'));
    lock.dataset.role = 'lock';
    followers = followersPanel(board.id, { me: model.me }); // who follows (presence)
    replace(teacherBox, pen.button, lock, followers.el);
    teacherBox.hidden = false;
    page.append(pen.dialog);
    pen.load().then(refresh); // the students' names, for « Stylet : Léa, Hugo »
  }

  const stateLabel = () => ({ live: 'En direct', locked: 'Verrouillé', ended: 'Terminé' })[model.boardState];

  // ——— applying ops ———
  function local(op) {
    const change = state.apply(op);
    view.changed(change);
    afterChange(change);
    return change;
  }

  function commit(op) {
    local(op);
    conn.submit(op).then((ack) => {
      if (!ack.ok && ack.error?.code !== 'reset') refused(ack.error, { resync: true });
    });
  }

  function remoteOp(op) {
    if (op?.type === 'control') { // pen and state changes also come in seq order
      penChanged(op.pen_all ? 'everyone' : op.pen?.length ? op.pen : 'none');
      if (op.state && op.state !== model.boardState) stateChanged(op.state);
      return;
    }
    const change = state.apply(op);
    view.changed(change);
    afterChange(change);
  }

  /** Our own op came back: keep what the server filled in (author, stacking order). */
  function confirmed(op) {
    const item = op?.type === 'add' ? state.items.get(op.item?.id) : null;
    if (item) { item.author = op.item.author; item.z = op.item.z; }
  }

  function afterChange(change) {
    if (change.pages) {
      if (model.wantedView && state.page(model.wantedView.page_id)) applyView(model.wantedView);
      ensurePage();
      refresh();
    } else {
      counts();
    }
  }

  function refused(error, { resync = false } = {}) {
    say(error?.message || 'Action refusée par le serveur.');
    if (resync) conn.resync();
  }

  async function control(event, payload) {
    const ack = await conn.control(event, payload);
    if (!ack.ok) say(ack.error?.message || 'Action refusée.');
    return ack;
  }

  let messageTimer = 0;
  function say(text, sticky = false) {
    message.textContent = text;
    clearTimeout(messageTimer);
    if (!sticky) messageTimer = setTimeout(() => { message.textContent = ''; }, MESSAGE_MS);
  }

  // ——— pages and view ———
  const pageIndex = () => state.pageIndex(model.pageId);

  function ensurePage() {
    if (model.pageId && state.page(model.pageId)) return;
    const fallback = state.pages[Math.min(Math.max(0, model.lastIndex ?? 0), state.pages.length - 1)];
    showPage(fallback?.id ?? null);
  }

  function showPage(id) {
    model.pageId = id;
    model.lastIndex = state.pageIndex(id);
    view.setPage(id);
  }

  function goTo(index, { manual = false } = {}) {
    const target = state.pages[index];
    if (!target) return;
    cancelGestures();
    showPage(target.id);
    view.setViewport(0, 0, 1);
    viewChanged({ manual });
    refresh();
  }

  function addPage(background) {
    const max = model.limits.pages_per_board;
    if (max && state.pages.length >= max) { say(`Ce tableau a déjà ${max} pages, le maximum.`); return; }
    const index = pageIndex() + 1;
    commit({ type: 'add_page', page: { id: newId(model.me?.id), background }, index });
    goTo(index);
  }

  function zoomBy(delta) {
    const i = ZOOMS.findIndex((z) => z >= view.zoom - 1e-6);
    const z = ZOOMS[Math.max(0, Math.min(ZOOMS.length - 1, (i < 0 ? 0 : i) + delta))];
    const cx = view.x + PAGE_W / view.zoom / 2;
    const cy = view.y + PAGE_H / view.zoom / 2;
    view.setViewport(cx - PAGE_W / z / 2, cy - PAGE_H / z / 2, z);
    viewChanged({ manual: true });
    refresh();
  }

  /** The teacher tells the class; a student who moves on their own stops following. */
  function viewChanged({ manual }) {
    if (isTeacher()) sendView();
    else if (manual && model.following) {
      model.following = false;
      say("Vous ne suivez plus l'enseignant·e. Touchez « Suivre l'enseignant·e » pour revenir.");
      refresh();
    }
  }

  let viewTimer = 0;
  let viewSentAt = 0;
  function sendView() {
    if (!isTeacher() || !model.share || !model.pageId) return;
    const send = () => {
      viewSentAt = performance.now();
      conn.volatile('view', { page_id: model.pageId, x: view.x, y: view.y, zoom: view.zoom });
    };
    clearTimeout(viewTimer);
    const wait = VIEW_EVERY_MS - (performance.now() - viewSentAt);
    if (wait <= 0) send(); else viewTimer = setTimeout(send, wait);
  }

  function viewReceived(v) {
    model.lastView = v;
    if (!isTeacher() && model.following) applyView(v);
  }

  function applyView(v) {
    if (!state.page(v.page_id)) { model.wantedView = v; return; } // its page is on its way
    model.wantedView = null;
    if (v.page_id !== model.pageId) cancelGestures();
    showPage(v.page_id);
    view.setViewport(v.x, v.y, v.zoom);
    refresh();
  }

  function toggleFollow() {
    if (isTeacher()) {
      model.share = !model.share;
      if (model.share) sendView();
      say(model.share ? 'La classe suit votre vue.' : 'Vous naviguez seul·e : la classe garde sa page.');
    } else {
      model.following = !model.following;
      if (model.following && model.lastView) applyView(model.lastView);
      say(model.following ? "Vous suivez l'enseignant·e." : "Vous ne suivez plus l'enseignant·e.");
    }
    refresh();
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen?.();
    else page.requestFullscreen?.().catch(() => say('Le plein écran est refusé par le navigateur.'));
  }

  // ——— pen, state, pointers ———
  function penChanged(pen) {
    const could = canDraw();
    model.pen = pen;
    if (!isTeacher() && could !== canDraw()) {
      say(canDraw() ? 'Vous avez le stylet : vous pouvez écrire au tableau.'
        : "Vous n'avez plus le stylet.");
    }
    if (!canDraw()) cancelGestures();
    refresh();
  }

  function stateChanged(s) {
    if (s === model.boardState) return;
    model.boardState = s;
    say({ live: 'Le tableau est ouvert.', locked: "Le tableau est verrouillé : seul·e l'enseignant·e écrit.",
      ended: 'Le cours est terminé : le tableau est en lecture seule.' }[s] ?? '');
    if (!canDraw()) cancelGestures();
    refresh();
  }

  function pointer(msg) {
    if (!msg.laser || String(msg.user_id) === String(model.me?.id)) return;
    view.laser(String(msg.user_id), msg.name, msg.page_id, msg.x, msg.y);
  }

  // ——— showing it all ———
  function counts() {
    const n = model.pageId ? state.countOn(model.pageId) : 0;
    page.dataset.itemCount = String(state.items.size);
    page.dataset.pageCount = String(state.pages.length);
    page.dataset.seq = String(conn.seq);
    view.el.setAttribute('aria-label', model.pageId
      ? `Tableau, page ${pageIndex() + 1} sur ${state.pages.length} : ${n} élément${n > 1 ? 's' : ''}`
      : 'Tableau sans page');
  }

  function refresh() {
    const draw = canDraw();
    tools.update({ tool: model.tool, colour: model.colour, width: model.width, canDraw: draw });
    pages.update({
      index: pageIndex(), count: state.pages.length, zoom: view.zoom,
      following: isTeacher() ? model.share : model.following,
      fullscreen: Boolean(document.fullscreenElement),
    });
    page.dataset.canDraw = String(draw);
    page.dataset.tool = model.tool;
    page.dataset.pageId = model.pageId ?? '';
    page.dataset.zoom = String(view.zoom);
    stage.dataset.tool = draw ? model.tool : 'none';
    penBadge.textContent = isTeacher() ? penText(model.pen, names)
      : draw ? 'Vous avez le stylet' : "Vous n'avez pas le stylet";
    penBadge.classList.toggle('has-pen', !isTeacher() && draw);
    const lock = teacherBox.querySelector('[data-role=lock]');
    if (lock) {
      lock.setAttribute('aria-pressed', String(model.boardState === 'locked'));
      lock.disabled = model.boardState === 'ended';
    }
    if (model.started) {
      meta.textContent = [model.board?.owner_name, stateLabel()].filter(Boolean).join(' · ');
    }
    counts();
  }

  // ——— keyboard: undo, redo, pages ———
  function onKey(e) {
    if (e.target.closest?.('input, textarea, select, dialog')) return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === 'z' && !e.shiftKey) { e.preventDefault(); control('undo'); }
    else if ((e.ctrlKey || e.metaKey) && (key === 'y' || (key === 'z' && e.shiftKey))) {
      e.preventDefault();
      control('redo');
    } else if (e.key === 'PageDown') goTo(pageIndex() + 1, { manual: true });
    else if (e.key === 'PageUp') goTo(pageIndex() - 1, { manual: true });
  }
  document.addEventListener('keydown', onKey);
  const onFullscreen = () => { view.layout(); refresh(); };
  document.addEventListener('fullscreenchange', onFullscreen);

  // Test and debugging hook: the board as this page holds it.
  window.__board = {
    state, view, conn, model,
    get items() { return state.items; },
    get pages() { return state.pages; },
    undo: () => control('undo'),
    redo: () => control('redo'),
  };
  refresh();
  title.focus();

  return function close() {
    document.removeEventListener('keydown', onKey);
    document.removeEventListener('fullscreenchange', onFullscreen);
    if (document.fullscreenElement) document.exitFullscreen?.();
    cancelGestures();
    boardKeys.destroy();
    text.close();
    clearTimeout(viewTimer);
    clearTimeout(messageTimer);
    conn.close();
    followers?.close();
    chat.close();
    view.destroy();
    if (window.__board?.conn === conn) delete window.__board;
  };
}
