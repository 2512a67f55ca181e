"""Numbered SQL migrations, applied in order by :mod:`twinme_lab.store`.

Each file is ``NNNN_name.sql``. A migration runs once, inside one transaction, and
its number is recorded in ``schema_migrations``. Never edit a migration that has been
released; add a new one.
"""
