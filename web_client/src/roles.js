// Role names as the school says them.

export const ROLE_LABELS = {
  teacher: 'Enseignant·e',
  student: 'Élève',
  parent: 'Responsable légal',
  cpe: 'CPE (vie scolaire)',
  staff: 'Administration',
  admin: 'Administrateur',
};

export const roleLabel = (role) => ROLE_LABELS[role] ?? role;
