"""Readers and writers of the file formats the project exchanges."""
