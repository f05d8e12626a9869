"""The repository people edit: takes the files under ``cohorts/`` (YAML, checked against
``schemas/``), gives a ``DeclarationSet`` and diagnostics with file and line. Modules:
``loader``, ``yamlfile``, ``lint``, ``validate``, ``diagnostics``, ``history`` (git)."""
