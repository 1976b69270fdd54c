"""Serveur temps réel de l'ENT : the live heart of the département's collèges' ENT."""

__version__ = "0.1.0"
