// The geometry instruments the toolbar offers (their code loads on first use: instruments.js).
export const INSTRUMENTS = [
  ['ruler', 'Règle'],
  ['square', 'Équerre'],
  ['protractor', 'Rapporteur'],
  ['compass', 'Compas'],
];
