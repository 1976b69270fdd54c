"""French first names and surnames for generated people (plausible, not real persons)."""

FIRST_NAMES_F = (
    "Emma Louise Jade Alice Chloé Lina Léa Rose Anna Mila Inès Ambre Julia Mia Léna Manon "
    "Juliette Lou Zoé Camille Agathe Sarah Romane Eva Nina Charlotte Margaux Clémence Lucie "
    "Maëlys Célia Salomé Jeanne Victoire Capucine Noémie Océane Justine Elsa Maëlle"
).split()
FIRST_NAMES_M = (
    "Gabriel Léo Raphaël Louis Arthur Jules Adam Maël Lucas Hugo Noah Liam Sacha Paul Nathan "
    "Gabin Ethan Mohamed Aaron Tom Théo Noé Malo Timéo Axel Mathis Enzo Baptiste Clément "
    "Antoine Valentin Maxime Thomas Victor Samuel Elias Ismaël Yanis Bastien Mathéo"
).split()
ADULT_FIRST_NAMES_F = (
    "Nathalie Isabelle Sylvie Catherine Sandrine Céline Stéphanie Véronique Christelle Aurélie "
    "Virginie Sophie Valérie Émilie Caroline Delphine Karine Hélène Laetitia Marion Élodie "
    "Audrey Julie Anne Claire Sabrina Vanessa Mélanie"
).split()
ADULT_FIRST_NAMES_M = (
    "Philippe Stéphane Christophe Frédéric Laurent Olivier Nicolas Sébastien David Éric "
    "Thierry Julien Jérôme Franck Cédric Vincent Pascal Fabrice Guillaume Arnaud Mickaël "
    "Grégory Ludovic Yannick Benoît Romain Damien Hervé"
).split()
_SURNAMES = (
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Lefèvre "
    "Mercier Dupont Lambert Bonnet François Martinez Legrand Garnier Faure Rousseau Blanc "
    "Guérin Muller Henry Roussel Nicolas Perrin Morin Mathieu Clément Gauthier Dumont Lopez "
    "Fontaine Chevalier Robin Masson Sanchez Gérard Nguyen Boyer Denis Lemaire Duval Joly "
    "Gautier Roger Roche Roy Noël Meyer Lucas Meunier Jean Pérez Marchand Dufour Blanchard "
    "Marie Barbier Brun Dumas Brunet Schmitt Leroux Colin Fernandez Pierre Renard Arnaud "
    "Rolland Caron Aubert Giraud Leclerc Vidal Bourgeois Renaud Lemoine Picard Gaillard "
    "Philippe Leclercq Lacroix Fabre Dupuis Olivier Rodriguez Da-Silva Hubert Louis Charles "
    "Guillot Rivière Le-Gall Guillaume Adam Rey Moulin Gonzalez Berger Lecomte Ménard Fleury "
    "Deschamps Carpentier Julien Benoît Paris Maillard Marchal Aubry Vasseur Le-Roux Renault "
    "Jacquet Collet Prévost Poirier Charpentier Royer Huet Baron Dupuy Pons Paul Laine "
    "Carré Breton Rémy Schneider Perrot Guyot Barre Marty Cousin Delattre Lebrun Wattier"
)
# Two-word surnames are written with "-" above only so that split() keeps them whole.
SURNAMES = tuple(n.replace("-", " ") for n in _SURNAMES.split())
