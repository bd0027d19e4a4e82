"""Disclosure tables: the one row renderer, published snapshots, their diffs, documents, page and views.

``rows`` renders every disclosure row (the page, the .xlsx/.csv downloads, published versions, the API);
``snapshots`` freezes a register into a JSON document; ``diff`` compares two snapshots; ``documents``
writes a diff as a change notice or a workbook; ``page`` is the browser page's table model and
``views`` the browser views. Import the submodule you need: this package imports nothing itself.
"""
