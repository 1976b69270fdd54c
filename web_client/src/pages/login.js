// The login page: « Se connecter avec l'ENT » when the ENT's SSO is configured, and an
// identifier with a personal code (for accounts outside the ENT), errors read out in French.
import { api } from '../api.js';
import { h, replace, setTitle } from '../dom.js';

// Who the personal-code form is closed to (/api/config's sso.code_login_off), in words.
const ROLE_PLURALS = {
  teacher: 'enseignants', student: 'élèves', parent: 'responsables légaux', cpe: 'CPE',
  staff: "personnels de l'administration", admin: 'administrateurs',
};

const listFr = (items) => (items.length > 1
  ? `${items.slice(0, -1).join(', ')} et ${items.at(-1)}` : items.join(''));

function ssoSection(sso, wanted) {
  const providers = sso?.providers ?? [];
  if (!providers.length) return null;
  // After signing in at the ENT, come back to the page that was asked for.
  const next = encodeURIComponent(`/${wanted ?? ''}`);
  return h('div', { class: 'sso' },
    ...providers.map((p) => h('a', {
      class: 'btn btn-primary btn-block', href: `${p.url}?next=${next}`,
    }, p.label)),
    h('p', { class: 'hint' }, 'Avec le même identifiant et le même mot de passe que sur l\'ENT.'));
}

export function renderLogin(root, { onLoggedIn, notice, sso, wanted }) {
  setTitle('Connexion');
  const error = h('div', { class: 'alert', role: 'alert', id: 'login-error' });
  const login = h('input', {
    id: 'login', name: 'login', type: 'text', required: true, autocomplete: 'username',
    autocapitalize: 'none', spellcheck: 'false',
    'aria-describedby': 'login-hint',
  });
  const code = h('input', {
    id: 'code', name: 'code', type: 'password', required: true,
    autocomplete: 'current-password', 'aria-describedby': 'code-hint',
  });
  const withSso = (sso?.providers ?? []).length > 0;
  const submit = h('button', {
    type: 'submit', class: withSso ? 'btn btn-block' : 'btn btn-primary btn-block',
  }, 'Se connecter');
  const closedTo = (sso?.code_login_off ?? []).map((r) => ROLE_PLURALS[r]).filter(Boolean);

  const form = h('form', { class: 'login-form', novalidate: true, 'aria-describedby': 'login-error' },
    h('div', { class: 'field' },
      h('label', { for: 'login' }, 'Identifiant'),
      h('p', { class: 'hint', id: 'login-hint' }, 'Par exemple : prenom.nom'),
      login),
    h('div', { class: 'field' },
      h('label', { for: 'code' }, 'Code personnel'),
      h('p', { class: 'hint', id: 'code-hint' }, 'Le code remis par votre établissement.'),
      code),
    error,
    submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const missing = !login.value.trim() ? login : !code.value ? code : null;
    if (missing) {
      showError(missing === login ? 'Saisissez votre identifiant.' : 'Saisissez votre code personnel.');
      missing.setAttribute('aria-invalid', 'true');
      missing.focus();
      return;
    }
    busy(true);
    try {
      const { user } = await api.login(login.value.trim(), code.value);
      onLoggedIn(user);
    } catch (err) {
      busy(false);
      showError(err.message);
      code.value = '';
      code.setAttribute('aria-invalid', 'true');
      code.focus();
    }
  });
  for (const input of [login, code]) {
    input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
  }

  function busy(on) {
    submit.disabled = on;
    form.setAttribute('aria-busy', String(on));
    submit.textContent = on ? 'Connexion…' : 'Se connecter';
  }
  function showError(message) {
    replace(error, h('p', {}, message));
  }

  replace(root,
    h('main', { id: 'contenu', class: 'login-page', tabindex: '-1' },
      h('div', { class: 'login-card' },
        h('p', { class: 'brand' }, 'ENT des collèges'),
        h('h1', {}, 'Connexion à votre espace'),
        notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
        ssoSection(sso, wanted),
        withSso ? h('h2', { class: 'login-or' }, 'Ou avec un code personnel') : null,
        closedTo.length ? h('p', { class: 'hint', id: 'code-closed' },
          `Les ${listFr(closedTo)} se connectent avec l'ENT : le code personnel ne leur sert plus.`)
          : null,
        form)));
  if (!withSso) login.focus();
}
